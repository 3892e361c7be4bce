// Kubernetes Events on a real API server, as agones-allocator records them: "Allocated" (Normal)
// on the allocated GameServer, found by the field selector `kubectl describe gameserver` uses
// (involvedObject name, namespace, kind, uid); CounterActionError/ListActionError Warnings when an
// action was skipped; repeats aggregated into one Event with a count; a write budget that drops
// (and counts) what does not fit without failing or delaying an allocation; and off when configured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type ControlPlane, type Json } from '../cluster/control-plane.ts';
import { devCerts } from '../helpers/certs.ts';
import { startAdmissionGate } from '../helpers/admission-gate.ts';
import { scrape } from '../helpers/prometheus.ts';
import { createGameServers, skipReason, startLocalGateway, until, type LocalGateway } from './fixtures.ts';

let cp: ControlPlane;
const certs = devCerts({ after });

before(async () => {
  if (skipReason) return;
  cp = await startControlPlane();
});
after(async () => {
  await cp?.stop();
});

async function gateway(t: { after(fn: () => Promise<void> | void): void }, ns: string, events: Record<string, unknown> = {}): Promise<LocalGateway> {
  await cp.createNamespace(ns);
  const gw = await startLocalGateway(t, certs, { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [ns], events } });
  await until('ready', async () => (await gw.readyStatus()) === 200, 20_000);
  return gw;
}

/** Events of a GameServer, selected as `kubectl describe` selects them. */
async function eventsOf(ns: string, gs: Json): Promise<Json[]> {
  const sel = [`involvedObject.name=${gs.metadata.name}`, `involvedObject.namespace=${ns}`, 'involvedObject.kind=GameServer', `involvedObject.uid=${gs.metadata.uid}`].join(',');
  const r = await cp.request('GET', `/api/v1/namespaces/${ns}/events?fieldSelector=${encodeURIComponent(sel)}`);
  assert.equal(r.status, 200, r.text);
  return r.body.items as Json[];
}

async function allEvents(ns: string): Promise<Json[]> {
  return (await cp.request('GET', `/api/v1/namespaces/${ns}/events`)).body.items as Json[];
}

describe('Kubernetes Events on a real API server', { skip: skipReason }, () => {
  test('Allocated on the GameServer, and a Warning per skipped counter or list action', async (t) => {
    const ns = 'ev-basic';
    const gw = await gateway(t, ns);
    await cp.createGameServer(ns, { name: 'gs-a', labels: { 'agones.dev/fleet': 'f' }, counters: { rooms: { count: 0, capacity: 4 } } });
    await until('cached', async () => {
      const r = await gw.allocate({ namespace: ns, counters: { rooms: { action: { value: 'Increment' }, amount: { value: 1 } }, absent: { action: { value: 'Increment' }, amount: { value: 1 } } }, lists: { players: { addValues: ['p1'] } } });
      return 'ok' in r ? r : undefined;
    });
    const gs = (await cp.request('GET', `/apis/agones.dev/v1/namespaces/${ns}/gameservers/gs-a`)).body;
    assert.equal(gs.status.state, 'Allocated');
    const evs = await until('three events', async () => {
      const e = await eventsOf(ns, gs);
      return e.length >= 3 ? e : undefined;
    });
    const by = (reason: string) => evs.find((e) => e.reason === reason)!;
    assert.deepEqual([by('Allocated').type, by('Allocated').message, by('Allocated').count], ['Normal', 'Allocated', 1]);
    assert.equal(by('Allocated').involvedObject.apiVersion, 'agones.dev/v1');
    assert.equal(by('Allocated').source.component, 'allocator-gateway');
    assert.equal(by('CounterActionError').type, 'Warning');
    assert.match(by('CounterActionError').message, /"absent"/);
    assert.doesNotMatch(by('CounterActionError').message, /rooms/, 'the counter it has was acted on');
    assert.equal(by('ListActionError').type, 'Warning');
    assert.match(by('ListActionError').message, /"players"/);
    assert.equal(evs.length, 3);
    const m = await scrape(gw.opsUrl);
    assert.equal(m.sum('gateway_kubernetes_events_written_total'), 3);
    assert.equal(m.sum('gateway_kubernetes_events_dropped_total'), 0);
  });

  test('re-allocating the same GameServer aggregates into one Allocated event with a count, also while its first write is in flight', async (t) => {
    const ns = 'ev-aggregate';
    const gw = await gateway(t, ns);
    await cp.createGameServer(ns, { name: 'gs-r', labels: { 'agones.dev/fleet': 'f' } });
    // The API server holds Event creations here until the test lets them through: the repeats
    // below are recorded while the first Event's write is in flight.
    const gate = await startAdmissionGate(cp, certs, t, {
      name: 'event-gate',
      namespace: ns,
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['events'], scope: 'Namespaced' }],
      probe: async (n) => {
        const name = `probe-${n}`;
        const r = await cp.request('POST', `/api/v1/namespaces/${ns}/events`, { metadata: { name }, involvedObject: { kind: 'Pod', name: 'probe', namespace: ns }, reason: 'Probe', message: 'probe', type: 'Normal' });
        assert.equal(r.status, 201, r.text);
        return name;
      },
    });
    gate.hold = (name) => name.startsWith('gs-r.');
    const from = gate.seen.length;
    const again = { namespace: ns, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'f' }, gameServerState: 'ALLOCATED' as const }, { matchLabels: { 'agones.dev/fleet': 'f' } }] };
    await until('cached', async () => 'ok' in (await gw.allocate(again)));
    await until('the first Event write reaches the API server', () => gate.seen.slice(from).some((n) => n.startsWith('gs-r.')), 5_000, 10);
    for (let i = 0; i < 5; i++) assert.ok('ok' in (await gw.allocate(again)));
    await new Promise((r) => setTimeout(r, 300)); // time for a second, wrong creation to be sent
    gate.open();
    const gs = (await cp.request('GET', `/apis/agones.dev/v1/namespaces/${ns}/gameservers/gs-r`)).body;
    const evs = await until('count 6', async () => {
      const e = await eventsOf(ns, gs);
      return e.length === 1 && e[0]!.count === 6 ? e : undefined;
    });
    assert.equal(gate.seen.filter((n) => n.startsWith('gs-r.')).length, 1, `one Event created: ${gate.seen.join(' ')}`);
    assert.equal(evs[0]!.reason, 'Allocated');
    assert.ok(Date.parse(evs[0]!.lastTimestamp) >= Date.parse(evs[0]!.firstTimestamp));
  });

  test('over the write budget events are dropped and counted; every allocation still succeeds at once', async (t) => {
    const ns = 'ev-budget';
    // one write a second, none earned per event, burst 1, two waiting at most
    const gw = await gateway(t, ns, { qps: 1, perEvent: 0, burst: 1, maxPending: 2 });
    await createGameServers(cp, ns, 12, (i) => ({ name: `gs-${i}`, labels: { 'agones.dev/fleet': 'b' } }));
    await until('cached', async () => (await scrape(gw.opsUrl)).sum('gateway_game_servers', { namespace: ns, state: 'Ready' }) === 12);
    const started = performance.now();
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => gw.allocate({ namespace: ns })));
    const elapsedMs = performance.now() - started;
    assert.ok(outcomes.every((o) => 'ok' in o), JSON.stringify(outcomes));
    // 12 allocations would take > 10 s if they waited for a 1/s event budget.
    assert.ok(elapsedMs < 5_000, `allocations took ${Math.round(elapsedMs)} ms`);
    const settled = await until('every event written or dropped', async () => {
      const m = await scrape(gw.opsUrl);
      const written = m.sum('gateway_kubernetes_events_written_total');
      const dropped = m.sum('gateway_kubernetes_events_dropped_total', { reason: 'queue-full' });
      return written + dropped === 12 ? { written, dropped } : undefined;
    }, 15_000);
    assert.ok(settled.dropped >= 12 - 1 - 2 - Math.ceil(elapsedMs / 1000) - 1, JSON.stringify(settled));
    assert.ok(settled.dropped > 0);
    assert.equal((await allEvents(ns)).length, settled.written);
  });

  test('events.enabled: false records none', async (t) => {
    const ns = 'ev-off';
    const gw = await gateway(t, ns, { enabled: false });
    await cp.createGameServer(ns, { name: 'gs-o' });
    await until('allocated', async () => 'ok' in (await gw.allocate({ namespace: ns })));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await allEvents(ns), []);
  });
});
