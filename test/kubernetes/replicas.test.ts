// Two gateway PROCESSES racing for the same GameServers on one real API server: every
// GameServer is handed out exactly once, the surplus is told RESOURCE_EXHAUSTED, and the API
// server's objects agree with what each caller was told (each request labels what it allocates).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type ControlPlane, type Json } from '../cluster/control-plane.ts';
import { devCerts } from '../helpers/certs.ts';
import { scrape } from '../helpers/prometheus.ts';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { createGameServers, outcome, skipReason, tally, type Outcome } from './fixtures.ts';

let cp: ControlPlane;
let replicas: GatewayProcess[] = [];
const NS = 'race';
const POOL = 100;
const REQUESTS = 500;
const certs = devCerts({ after });
const cleanups: (() => Promise<void> | void)[] = [];
const owner = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };

before(async () => {
  if (skipReason) return;
  cp = await startControlPlane();
  await cp.createNamespace(NS);
  await createGameServers(cp, NS, POOL, (i) => ({ name: `gs-${String(i).padStart(3, '0')}`, labels: { 'agones.dev/fleet': 'race' }, nodeName: `node-${i % 10}` }));
  // debug level: the engine logs each lost write race ('allocation write conflicted')
  const config = { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [NS] }, log: { level: 'debug' } };
  replicas = await Promise.all(['a', 'b'].map((name) => startGatewayProcess(owner, { certs, name, config })));
});
after(async () => {
  await Promise.all(cleanups.map((f) => f()));
  await cp?.stop();
});

describe('two gateway processes on one API server', { skip: skipReason }, () => {
  test(`${REQUESTS} requests over ${POOL} Ready GameServers: exactly ${POOL} distinct successes, the rest RESOURCE_EXHAUSTED, and the API server agrees`, async () => {
    const clients = replicas.map((r) => r.client());
    // connect both channels first (a miss allocates nothing), so that both replicas race from the first request
    const warm = await Promise.all(clients.map((c) => outcome(c.allocate({ namespace: NS, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'none' } }] }))));
    assert.ok(warm.every((o) => 'code' in o && o.code === 'RESOURCE_EXHAUSTED'), JSON.stringify(warm));
    const t0 = performance.now();
    const calls: Promise<Outcome>[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const req = { namespace: NS, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'race' } }], metadata: { labels: { req: `r-${i}` } } };
      calls.push(outcome(clients[i % clients.length]!.allocate(req, { deadline: 30_000 })));
    }
    const outcomes = await Promise.all(calls);
    const ms = performance.now() - t0;
    const counts = tally(outcomes);
    const perReplica = replicas.map((r, k) => `${r.name}: ${outcomes.filter((o, i) => i % replicas.length === k && 'ok' in o).length} ok`);
    const conflicts = replicas.map((r) => r.logs.filter((l) => l.msg === 'allocation write conflicted; trying the next candidate').length);
    console.log(`${REQUESTS} requests in ${ms.toFixed(0)} ms: ${JSON.stringify(counts)}; ${perReplica.join(', ')}; lost write races ${conflicts.join(' + ')}`);

    const told = new Map<string, string>(); // GameServer → request label
    outcomes.forEach((o, i) => {
      if (!('ok' in o)) return;
      assert.ok(!told.has(o.ok), `${o.ok} handed out twice (r-${i} and ${told.get(o.ok)})`);
      told.set(o.ok, `r-${i}`);
    });
    assert.deepEqual(counts, { OK: POOL, 'RESOURCE_EXHAUSTED/NO_GAME_SERVER': REQUESTS - POOL });
    const bothAllocated = replicas.every((_, k) => outcomes.some((o, i) => i % replicas.length === k && 'ok' in o));
    assert.ok(bothAllocated || conflicts.some((n) => n > 0), 'the replicas actually raced (both allocated, or writes lost to the other)');

    // audit: the API server holds exactly those as Allocated, each written by the request told so
    const items = (await cp.listGameServers(NS)).items as Json[];
    const allocated = items.filter((g) => g.status.state === 'Allocated');
    assert.equal(allocated.length, POOL);
    for (const g of allocated) {
      assert.equal(g.metadata.labels.req, told.get(g.metadata.name), `${g.metadata.name}: written by the request that was told it got it`);
    }
  });

  test('a steady stream on both replicas over a large pool: no call runs out of write attempts (CONTENTION) while GameServers are left, and lost write races stay rare', async () => {
    const ns = 'race-steady';
    const pool = 1_500;
    const perReplica = 640;
    const inFlight = 32;
    await cp.createNamespace(ns);
    await createGameServers(cp, ns, pool, (i) => ({ name: `gs-${String(i).padStart(4, '0')}`, labels: { 'agones.dev/fleet': 'steady' }, nodeName: `node-${i % 50}` }));
    const config = { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [ns] } };
    const pair = await Promise.all(['c', 'd'].map((name) => startGatewayProcess(owner, { certs, name, config })));
    const clients = pair.map((r) => r.client());
    const req = { namespace: ns, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'steady' } }] };
    // each replica: `inFlight` callers, one call after another, as a matchmaker's workers do
    const outcomes: Outcome[] = [];
    await Promise.all(clients.flatMap((c) => Array.from({ length: inFlight }, async () => {
      for (let i = 0; i < perReplica / inFlight; i++) outcomes.push(await outcome(c.allocate(req, { deadline: 30_000 })));
    })));
    const counts = tally(outcomes);
    // GameServer writes per allocation, from each replica's agones_gameserver_allocations_retry_total
    let writes = 0;
    let allocations = 0;
    for (const r of pair) {
      const m = await scrape(`http://127.0.0.1:${r.opsPort}`);
      writes += m.sum('agones_gameserver_allocations_retry_total_sum');
      allocations += m.sum('agones_gameserver_allocations_retry_total_count');
    }
    console.log(`steady race: ${JSON.stringify(counts)}; ${(writes / allocations).toFixed(2)} writes per allocation`);
    // Both replicas order the pool alike: picking strictly in order, nearly every allocation lost a race first (1.8 writes each).
    assert.ok(writes / allocations < 1.45, `${(writes / allocations).toFixed(2)} GameServer writes per allocation`);
    assert.deepEqual(counts, { OK: outcomes.length });
    const names = outcomes.map((o) => ('ok' in o ? o.ok : ''));
    assert.equal(new Set(names).size, names.length, 'no GameServer handed out twice');
  });
});
