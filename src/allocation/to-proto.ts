// Domain → wire: the response to callers, and the request forwarded to a remote allocator.
import { parseInt64, type Int64 } from './int64.ts';
import { mapRecord } from './records.ts';
import type { Allocation, AllocationRequest, GameServerSelector } from './types.ts';
import type { WireAllocationRequest, WireAllocationResponse, WireGameServerSelector } from './wire.ts';

/** The response message for an allocation. */
export function responseToWire(a: Allocation): WireAllocationResponse {
  const counters = mapRecord(a.counters, (c) => ({ count: { value: String(c.count) }, capacity: { value: String(c.capacity) } }));
  const lists = mapRecord(a.lists, (l) => ({ values: [...l.values], capacity: { value: String(l.capacity) } }));
  return {
    gameServerName: a.gameServerName,
    ports: a.ports.map((p) => ({ name: p.name, port: p.port })),
    address: a.address,
    addresses: a.addresses.map((x) => ({ type: x.type, address: x.address })),
    nodeName: a.nodeName,
    source: a.source,
    metadata: { labels: { ...a.metadata.labels }, annotations: { ...a.metadata.annotations } },
    counters,
    lists,
  };
}

function selectorToWire(s: GameServerSelector): WireGameServerSelector {
  const out: WireGameServerSelector = {
    matchLabels: { ...s.matchLabels },
    // Always explicit: READY is the zero value, and older remotes read absence as Ready too.
    gameServerState: s.gameServerState === 'Allocated' ? 'ALLOCATED' : 'READY',
    counters: Object.fromEntries(
      Object.entries(s.counters).map(([k, c]) => [
        k,
        { minCount: String(c.minCount), maxCount: String(c.maxCount), minAvailable: String(c.minAvailable), maxAvailable: String(c.maxAvailable) },
      ]),
    ),
    lists: Object.fromEntries(
      Object.entries(s.lists).map(([k, l]) => [
        k,
        { containsValue: l.containsValue, minAvailable: String(l.minAvailable), maxAvailable: String(l.maxAvailable) },
      ]),
    ),
  };
  if (s.players) out.players = { minAvailable: String(s.players.minAvailable), maxAvailable: String(s.players.maxAvailable) };
  return out;
}

/**
 * The request to send to a remote allocator: every field forwarded, multi-cluster off so the
 * remote allocates locally, and the deprecated twins filled for remotes that predate them.
 */
export function forwardedRequestToWire(r: AllocationRequest, remoteNamespace: string): WireAllocationRequest {
  const selectors = r.selectors.map(selectorToWire);
  const patch = { labels: { ...r.metadata.labels }, annotations: { ...r.metadata.annotations } };
  return {
    namespace: remoteNamespace,
    multiClusterSetting: { enabled: false, policySelector: { matchLabels: { ...r.multiClusterSetting.policySelector } } },
    gameServerSelectors: selectors,
    preferredGameServerSelectors: selectors.slice(0, -1),
    requiredGameServerSelector: selectors.at(-1) ?? null,
    scheduling: r.scheduling,
    metadata: patch,
    metaPatch: patch,
    priorities: r.priorities.map((p) => ({ type: p.type, key: p.key, order: p.order })),
    counters: Object.fromEntries(
      Object.entries(r.counters).map(([k, c]) => [
        k,
        {
          action: c.action === null ? null : { value: c.action },
          amount: c.amount === null ? null : { value: String(c.amount) },
          capacity: c.capacity === null ? null : { value: String(c.capacity) },
        },
      ]),
    ),
    lists: Object.fromEntries(
      Object.entries(r.lists).map(([k, l]) => [
        k,
        { addValues: [...l.addValues], capacity: l.capacity === null ? null : { value: String(l.capacity) }, deleteValues: [...l.deleteValues] },
      ]),
    ),
  };
}

/** Reads a remote allocator's response into the domain, with source set to the endpoint dialled. */
export function responseFromWire(w: WireAllocationResponse, namespace: string, source: string): Allocation {
  const num = (v: { value: string | number } | null | undefined): Int64 => parseInt64(v?.value ?? 0) ?? 0;
  return {
    gameServerName: w.gameServerName,
    namespace,
    address: w.address,
    addresses: (w.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
    ports: (w.ports ?? []).map((p) => ({ name: p.name, port: p.port })),
    nodeName: w.nodeName,
    metadata: { labels: { ...w.metadata?.labels }, annotations: { ...w.metadata?.annotations } },
    counters: Object.fromEntries(Object.entries(w.counters ?? {}).map(([k, c]) => [k, { count: num(c.count), capacity: num(c.capacity) }])),
    lists: Object.fromEntries(Object.entries(w.lists ?? {}).map(([k, l]) => [k, { values: [...l.values], capacity: num(l.capacity) }])),
    source,
  };
}
