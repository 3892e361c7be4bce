// GatewayService handlers (proto/gateway/v1/gateway.proto), transport-free: the gRPC door
// adapts them. GetCapacity advertises the engine's counts; ExplainRoute dry-runs the router.
import { AllocationError } from '../allocation/errors.ts';
import { setOwn } from '../allocation/records.ts';
import { requestFromWire, type DecodeOptions } from '../allocation/from-proto.ts';
import { namespaceProblem } from '../allocation/labels.ts';
import { LIMITS } from '../allocation/limits.ts';
import type { WireAllocationRequest } from '../allocation/wire.ts';
import type { Engine } from '../engine/engine.ts';
import { namespaceCapacity, type NamespaceCapacity, type StateCounts } from './capacity.ts';
import type { RouteExplanation } from './policy-router.ts';

export interface GatewayServiceOptions {
  readonly engine: Engine;
  readonly explain: (req: ReturnType<typeof requestFromWire>, identity: string | null, key: string | null, signal: AbortSignal) => Promise<RouteExplanation>;
  readonly decode: DecodeOptions;
  /** TTL callers should cache an advertisement for. */
  readonly capacityTtlMs: number;
  /** Label pairs advertised per namespace at most. */
  readonly maxLabels?: number;
  /** Whether this gateway serves GameServers of `namespace` (only those are advertised and cached). */
  readonly serves: (namespace: string) => boolean;
  /** Whether `identity` may act in `namespace` (read its capacity). */
  readonly mayUse: (identity: string | null, namespace: string) => boolean;
  /** Throws PERMISSION_DENIED unless `identity` may allocate in `namespace` (forwarding when `multiCluster`). */
  readonly authorize: (identity: string | null, namespace: string, multiCluster: boolean) => void;
}

/** What a unary handler learns about its call. */
export interface ServiceCall {
  readonly identity: string | null;
  readonly signal: AbortSignal;
}

const wireCounts = (c: StateCounts) => ({ ready: String(c.ready), allocated: String(c.allocated) });

function wireCapacity(c: NamespaceCapacity) {
  return {
    total: wireCounts(c.total),
    fleets: Object.fromEntries(Object.entries(c.fleets).map(([k, v]) => [k, wireCounts(v)])),
    labels: [...c.labels].map(([id, v]) => {
      const cut = id.indexOf('\u0000');
      return { key: id.slice(0, cut), value: id.slice(cut + 1), counts: wireCounts(v) };
    }),
    labels_complete: c.labelsComplete,
  };
}

/** Builds the handlers; results are computed at most every ttl/4 per namespace. */
export function gatewayServiceHandlers(opts: GatewayServiceOptions): Record<string, (request: unknown, call: ServiceCall) => Promise<unknown>> {
  // Keyed only by namespaces this gateway serves: a bounded set, whatever names callers send.
  const cache = new Map<string, { at: number; value: ReturnType<typeof wireCapacity> }>();
  const maxLabels = opts.maxLabels ?? 512;
  return {
    async GetCapacity(request, call) {
      const asked = (request as { namespaces?: string[] }).namespaces ?? [];
      for (const [i, ns] of asked.entries()) {
        const problem = namespaceProblem(ns);
        if (problem) throw new AllocationError('INVALID_FIELD', `namespaces[${i}]: ${problem}`, { metadata: { field: `namespaces[${i}]` } });
        opts.authorize(call.identity, ns, false);
      }
      const names = asked.length > 0 ? asked : opts.engine.index.namespaces().filter((ns) => opts.mayUse(call.identity, ns)).slice(0, LIMITS.maxCapacityNamespaces);
      const now = Date.now();
      const namespaces: Record<string, ReturnType<typeof wireCapacity>> = {};
      for (const ns of names) {
        if (!opts.serves(ns)) continue;
        let e = cache.get(ns);
        if (!e || now - e.at > opts.capacityTtlMs / 4) {
          e = { at: now, value: wireCapacity(namespaceCapacity(opts.engine.index, ns, maxLabels)) };
          cache.set(ns, e);
          if (cache.size > 1_024) cache.clear();
        }
        setOwn(namespaces, ns, e.value);
      }
      return { namespaces, ttl_ms: String(opts.capacityTtlMs), synced: opts.engine.ready, idempotency_keys: true };
    },
    async ExplainRoute(request, call) {
      const r = request as { request?: WireAllocationRequest | null; idempotency_key?: string };
      const req = requestFromWire(r.request ?? {}, opts.decode);
      // ExplainRoute reads policies, secrets and remote capacity of the namespace: the caller must be allowed there.
      opts.authorize(call.identity, req.namespace, req.multiClusterSetting.enabled);
      const e = await opts.explain(req, call.identity, r.idempotency_key ? r.idempotency_key : null, call.signal);
      return {
        multi_cluster: e.multiCluster,
        steps: e.steps.map((s) => ({
          policy: s.policy, cluster_name: s.clusterName, priority: s.priority, weight: String(s.weight), kind: s.kind,
          namespace: s.namespace, endpoints: [...s.endpoints], decision: s.decision, reason: s.reason,
        })),
        problems: [...e.problems],
        randomized: e.randomized,
      };
    },
  };
}
