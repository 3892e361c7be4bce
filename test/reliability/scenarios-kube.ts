// Reliability scenarios on real kube-apiservers and etcd: faults of the control plane under load,
// a replica SIGKILLed mid-allocation, a remote allocator killed and black-holed, and the soak. The
// load process records per call the GameServer it was told; the ledger compares those names with
// the clusters' objects, read from the API servers (not from the gateways).
import assert from 'node:assert/strict';
import { startControlPlane, startEtcd, type ControlPlane, type EtcdHandle } from '../cluster/control-plane.ts';
import type { TestCerts } from '../helpers/certs.ts';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { blackHole, policy, policyDir } from '../multicluster/fixtures.ts';
import { auditCalls, identityOfCert, IDEMPOTENCY_ANNOTATION, LAST_ALLOCATED, snapshotItems, type AllocationEvent, type CallLedger, type ClusterSnapshot } from './ledger.ts';
import type { CallerOutput } from './caller.ts';
import { idempotencyHash } from '../../src/router/idempotency.ts';
import { fdCount, inFlightAt, p99Of, rssMiB, runCaller, sleep, tally, unexpected, untilServed, type ScenarioResult } from './load.ts';
import type { Owner } from './scenarios-memory.ts';

/** What a fault may cost a caller: an answer lost (unknown), not ready, the caller's deadline, contention. */
const FAULT_OUTCOMES = ['OK', 'UNAVAILABLE/unknown', 'UNAVAILABLE/NOT_READY', 'DEADLINE_EXCEEDED/unknown', 'DEADLINE_EXCEEDED/DEADLINE_EXCEEDED', 'ABORTED/CONTENTION', 'UNAVAILABLE/ALL_TARGETS_FAILED'];

export interface KubeEnv {
  readonly etcd: EtcdHandle;
  readonly a: ControlPlane;
  /** A second API server on cluster A's etcd prefix (writes while A's server is down). */
  readonly a2: ControlPlane;
  /** A separate cluster (remote allocator's). */
  readonly b: ControlPlane;
  stop(): Promise<void>;
}

export async function startKubeEnv(): Promise<KubeEnv> {
  const etcd = await startEtcd();
  const [a, b] = await Promise.all([startControlPlane({ etcd, etcdPrefix: '/rel-a' }), startControlPlane({ etcd, etcdPrefix: '/rel-b' })]);
  const a2 = await startControlPlane({ etcd, etcdPrefix: '/rel-a' });
  return {
    etcd, a, a2, b,
    async stop() {
      await Promise.all([a.stop(), a2.stop(), b.stop()]);
      await etcd.stop();
    },
  };
}

export async function createPool(cp: ControlPlane, ns: string, prefix: string, n: number): Promise<void> {
  const r = await cp.request('GET', `/api/v1/namespaces/${ns}`);
  if (r.status === 404) await cp.createNamespace(ns);
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = next++; i < n; i = next++) await cp.createGameServer(ns, { name: `${prefix}-${String(i).padStart(5, '0')}`, labels: { pool: prefix } });
  }));
}

const snapshot = async (cp: ControlPlane, ns: string): Promise<ClusterSnapshot> => snapshotItems(await cp.listGameServers(ns));

function kubeGateway(owner: Owner, certs: TestCerts, cp: ControlPlane, ns: string, name: string, extra: Record<string, unknown> = {}): Promise<GatewayProcess> {
  return startGatewayProcess(owner, { certs, name, config: { log: { level: 'info' }, cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [ns] }, ...extra } });
}

function ledger(calls: CallerOutput['results'], certs: TestCerts, ns: string, before: ClusterSnapshot, after: ClusterSnapshot): CallLedger {
  return auditCalls({ calls, namespace: ns, identity: identityOfCert(certs.clientCertFile), before, after });
}

function callerRow(scenario: string, out: CallerOutput, l: CallLedger, extra: Partial<ScenarioResult>): ScenarioResult {
  return {
    scenario, requests: out.results.reduce((n, x) => n + x.tries, 0), rps: out.results.length / ((out.endedAt - out.startedAt) / 1000), faults: 1, badInputs: 0,
    doubles: l.doubles, lost: l.lost, p99Ms: p99Of(out.results), rssGrowthMiB: NaN, ...extra,
    note: [`${l.told} told by name, ${l.unknownCalls} of unknown outcome (${l.reclaimable} of them allocated)`, extra.note].filter(Boolean).join('; '),
  };
}

/** kube-apiserver restarted, etcd paused, watch expired (410): three phases under load on one gateway. */
export async function controlPlaneFaults(owner: Owner, certs: TestCerts, env: KubeEnv, o: { phaseMs: number; rps: number }): Promise<ScenarioResult[]> {
  const ns = 'rel';
  const total = Math.round((o.phaseMs * o.rps) / 1000);
  await createPool(env.a, ns, 'cp', total * 3 + 100);
  const gw = await kubeGateway(owner, certs, env.a, ns, 'kube-faults');
  const rows: ScenarioResult[] = [];
  // `inject` returns the interval during which the fault held; calls in flight then were hit.
  const phase = async (name: string, prefix: string, inject: () => Promise<{ from: number; to: number }>): Promise<void> => {
    const before = await snapshot(env.a, ns);
    const rss0 = rssMiB(gw.pid);
    const from = gw.logs.length;
    const load = runCaller({ addresses: [gw.address], total, rps: o.rps, concurrency: 8, deadlineMs: 3_000, request: { namespace: ns }, labelEach: 'req', keyPrefix: prefix, retryForMs: 0 }, certs);
    await untilServed(gw, Math.max(5, Math.round(total / 5)), from);
    const fault = await inject();
    const out = await load;
    assert.deepEqual(unexpected(out.results, FAULT_OUTCOMES), [], name);
    // The fault hit: calls (each a write) were in flight while it held, not only before or after.
    const hit = out.results.filter((r) => r.startedAt <= fault.to && r.endedAt >= fault.from);
    assert.ok(hit.length > 0, `${name}: no call was in flight while the fault held`);
    const l = ledger(out.results, certs, ns, before, await snapshot(env.a, ns));
    assert.deepEqual(l.problems, [], name);
    // Serving again after the fault.
    const again = await gw.client().allocate({ namespace: ns }, { deadline: 10_000 });
    assert.ok(again.gameServerName);
    rows.push(callerRow(name, out, l, { rssGrowthMiB: rssMiB(gw.pid) - rss0, note: `${hit.length} calls in flight during the fault; ${JSON.stringify(tally(out.results))}` }));
  };
  const window = async (fn: () => Promise<void>) => {
    const from = Date.now();
    await fn();
    return { from, to: Date.now() };
  };
  await phase('kube-apiserver restarted under load', 'restart', () => window(() => env.a.restartApiServer()));
  await phase('etcd paused 3 s under load', 'pause', () => window(async () => {
    env.etcd.pause();
    await sleep(3_000);
    env.etcd.resume();
  }));
  await phase('watch expired (410 Gone) under load', 'expired', () => window(async () => {
    await env.a.stopApiServer();
    // Another API server on the same etcd changes the namespace; etcd is compacted past the gateway's resourceVersion.
    for (let i = 0; i < 5; i++) await env.a2.createGameServer(ns, { name: `late-${i}`, labels: { pool: 'late' } });
    await env.etcd.compact();
    await env.a.startApiServer();
  }));
  assert.ok(gw.logs.some((l) => /410 Gone|expired/.test(String(l.msg))), 'the gateway did not relist after 410');
  return rows;
}

/**
 * Writes held in flight: etcd paused, so every Allocate now on its way waits on its write; the
 * fault is injected while they wait, then etcd resumes. Returns when the fault was injected.
 */
async function withWritesInFlight(env: KubeEnv, fault: () => Promise<void>): Promise<number> {
  env.etcd.pause();
  try {
    await sleep(600);
    const at = Date.now();
    await fault();
    return at;
  } finally {
    env.etcd.resume();
  }
}

/** Two replicas on one cluster; one SIGKILLed mid-allocation; callers retry the same key on the other. */
export async function replicaKilled(owner: Owner, certs: TestCerts, env: KubeEnv, o: { total: number; rps: number }): Promise<ScenarioResult> {
  const ns = 'rel-kill';
  await createPool(env.a, ns, 'k', o.total + 50);
  const [r1, r2] = await Promise.all([kubeGateway(owner, certs, env.a, ns, 'replica-1'), kubeGateway(owner, certs, env.a, ns, 'replica-2')]);
  const before = await snapshot(env.a, ns);
  const caller = runCaller({ addresses: [r1.address, r2.address], total: o.total, rps: o.rps, deadlineMs: 2_000, request: { namespace: ns }, keyPrefix: 'kill', retryForMs: 30_000 }, certs);
  // Kill replica 1 once it serves, while its writes are in flight (held there by an etcd pause).
  await untilServed(r1, Math.max(5, Math.round(o.total / 10)));
  const killedAt = await withWritesInFlight(env, () => r1.kill('SIGKILL'));
  const out = await caller;
  // The kill hit: calls whose first try was on replica 1 lost their answer with it.
  const lostAnswers = inFlightAt(out.results, killedAt).filter((r) => r.firstTarget === 0 && r.firstUnknown);
  assert.ok(lostAnswers.length > 0, 'no call on replica 1 lost its answer: the kill missed');
  const failed = out.results.filter((x) => x.outcome !== 'told');
  assert.deepEqual(failed.map((f) => `${f.key}: ${f.code}`), [], 'callers that retried were never told');
  const l = ledger(out.results, certs, ns, before, await snapshot(env.a, ns));
  assert.deepEqual(l.problems, []);
  assert.equal(l.reclaimable, 0, 'every caller was told by its retry, so no allocation is left to forgive');
  return callerRow('replica SIGKILLed mid-allocation (2 replicas, retry same key)', out, l, { note: `${lostAnswers.length} answers lost at the kill, ${out.results.filter((x) => x.tries > 1).length} calls retried` });
}

/** A front gateway forwarding to a remote allocator behind a black hole; the remote SIGKILLed mid-request and restarted. */
export async function remoteKilled(owner: Owner, certs: TestCerts, env: KubeEnv, o: { total: number; rps: number }): Promise<ScenarioResult> {
  const ns = 'rel-remote';
  await createPool(env.b, ns, 'b', o.total + 50);
  let b = await kubeGateway(owner, certs, env.b, ns, 'remote-b');
  const hole = await blackHole(owner);
  const dir = policyDir(owner, certs, [
    policy('local', { priority: 1, cluster: 'front' }),
    policy('remote', { priority: 2, cluster: 'cluster-b', namespace: ns, endpoints: [hole, b.address] }),
  ]);
  const front = await startGatewayProcess(owner, {
    certs, name: 'front',
    config: { log: { level: 'info' }, multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, connectTimeoutMs: 300 } },
  });
  const before = await snapshot(env.b, ns);
  const caller = runCaller({
    addresses: [front.address], total: o.total, rps: o.rps, deadlineMs: 2_000, request: { namespace: 'default', multiClusterSetting: { enabled: true } }, keyPrefix: 'remote', retryForMs: 40_000,
  }, certs);
  await untilServed(front, Math.max(5, Math.round(o.total / 5)));
  const port = b.grpcPort;
  const killed = b.address;
  // Forwarded calls wait on the remote's writes (etcd paused) when it dies.
  await withWritesInFlight(env, () => b.kill('SIGKILL'));
  await sleep(2_000);
  b = await kubeGateway(owner, certs, env.b, ns, 'remote-b-restarted', { grpc: { host: '127.0.0.1', port } });
  const out = await caller;
  // The kill hit: the front lost at least one answer from the remote (an ambiguous attempt).
  const lostAnswers = front.logs.filter((x) => x.endpoint === killed && x.outcome === 'ambiguous').length;
  assert.ok(lostAnswers > 0, 'the front lost no answer from the killed remote: the kill missed');
  const failed = out.results.filter((x) => x.outcome !== 'told');
  assert.deepEqual(failed.map((f) => `${f.key}: ${f.code}`), [], 'callers that retried were never told');
  // Cluster B's GameServers carry the key the front forwarded ('gw1-' + the hash of the caller's
  // key, as policy-router sends it), under the front's client identity.
  const callerId = identityOfCert(certs.clientCertFile);
  const frontId = identityOfCert(certs.clientCertFile);
  const calls = out.results.map((r) => ({ ...r, key: `gw1-${idempotencyHash('default', callerId, r.key)}`, identity: frontId }));
  const l = auditCalls({ calls, namespace: ns, identity: frontId, before, after: await snapshot(env.b, ns) });
  assert.deepEqual(l.problems, []);
  assert.equal(l.reclaimable, 0, 'every caller was told by its retry, so no allocation is left to forgive');
  const blackHoled = front.logs.filter((x) => x.endpoint === hole).length;
  return callerRow('remote allocator SIGKILLed mid-request + black-holed endpoint', out, l, {
    faults: 2, note: `${lostAnswers} answers lost at the kill, ${out.results.filter((x) => x.tries > 1).length} retried, ${blackHoled} black-hole attempts logged`,
  });
}

/** Soak: steady rate, GameServers re-readied as they are allocated; RSS, heap, fds and p99 over time. */
export async function soak(owner: Owner, certs: TestCerts, env: KubeEnv, o: { windows: number; windowMs: number; rps: number }): Promise<ScenarioResult & { samples: string[] }> {
  const ns = 'soak';
  await createPool(env.a, ns, 's', 400);
  const gw = await kubeGateway(owner, certs, env.a, ns, 'soak');
  // name|last-allocated → the allocation, one per allocation the cluster made (read from the API server)
  const seen = new Map<string, AllocationEvent>();
  const note = (g: { metadata: { name: string; annotations?: Record<string, string> } }) => {
    const stamp = g.metadata.annotations?.[LAST_ALLOCATED] ?? '';
    seen.set(`${g.metadata.name}|${stamp}`, { name: g.metadata.name, stamp, key: g.metadata.annotations?.[IDEMPOTENCY_ANNOTATION] ?? '' });
  };
  let stop = false;
  const reReadier = (async () => {
    while (!stop) {
      const list = await env.a.listGameServers(ns).catch(() => ({ items: [] }));
      for (const g of list.items as { metadata: { name: string; annotations?: Record<string, string> }; status: { state: string } }[]) {
        if (g.status.state !== 'Allocated') continue;
        note(g);
        await env.a.patchGameServer(ns, g.metadata.name, { status: { state: 'Ready' } }).catch(() => {});
      }
      await sleep(100);
    }
  })();
  const heapMiB = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${gw.opsPort}/metrics`)).text();
    const m = /^gateway_nodejs_heap_size_used_bytes (\d+(\.\d+)?)/m.exec(text);
    return m ? Number(m[1]) / (1 << 20) : NaN;
  };
  const samples: string[] = [];
  const windows: { r: { count: number; rps: number; p99Ms: number; out: CallerOutput }; rss: number; heap: number; fds: number }[] = [];
  // Every sample after the warm-up window, in time order (the request rate is constant).
  const trace: { heap: number; rss: number }[] = [];
  for (let w = 0; w < o.windows; w++) {
    // Minima over the window: the live set after collections, not where the GC sawtooth happens to be.
    const heaps: number[] = [];
    const rsses: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        heaps.push(await heapMiB().catch(() => NaN));
        rsses.push(rssMiB(gw.pid));
        if (w > 0) trace.push({ heap: heaps.at(-1)!, rss: rsses.at(-1)! });
        await sleep(500);
      }
    })();
    const out = await runCaller({ addresses: [gw.address], total: Math.round((o.windowMs * o.rps) / 1000), rps: o.rps, concurrency: 8, deadlineMs: 3_000, request: { namespace: ns }, keyPrefix: `soak${w}`, retryForMs: 0 }, certs);
    const r = { count: out.results.length, rps: out.results.length / ((out.endedAt - out.startedAt) / 1000), p99Ms: p99Of(out.results), out };
    sampling = false;
    await sampler;
    const rec = { r, rss: Math.min(...rsses), heap: Math.min(...heaps.filter(Number.isFinite)), fds: fdCount(gw.pid) };
    windows.push(rec);
    samples.push(`window ${w + 1}: ${r.count} calls, ${r.rps.toFixed(0)}/s, p99 ${r.p99Ms.toFixed(1)} ms, RSS ${rec.rss.toFixed(1)} MiB, heap ${rec.heap.toFixed(1)} MiB, fds ${rec.fds}`);
  }
  await sleep(1_500);
  stop = true;
  await reReadier;
  const final = await env.a.listGameServers(ns);
  for (const g of final.items as { metadata: { name: string; annotations?: Record<string, string> }; status: { state: string } }[]) {
    if (g.status.state === 'Allocated') note(g);
  }
  const requests = windows.reduce((n, w) => n + w.r.count, 0);
  const calls = windows.flatMap((w) => w.r.out.results);
  for (const w of windows) assert.deepEqual(unexpected(w.r.out.results, ['OK', 'RESOURCE_EXHAUSTED/NO_GAME_SERVER']), []);
  // By allocation: every (name, last-allocated) a caller was told is one the cluster made, once.
  const l = auditCalls({ calls, namespace: ns, identity: identityOfCert(certs.clientCertFile), events: [...seen.values()] });
  assert.deepEqual(l.problems, []);
  const { doubles, lost } = l;
  // Growth measured from the end of the first window (warm-up) to the end.
  const first = windows[0]!;
  const last = windows.at(-1)!;
  // Trough to trough: V8 grows RSS and heap in a sawtooth (a major collection every minute or two)
  // and returns memory lazily, so compare the lowest point of the first half of the run (after
  // warm-up) with the lowest point of the second half, per request served in between.
  const half = Math.floor(trace.length / 2);
  const trough = (xs: { heap: number; rss: number }[], k: 'heap' | 'rss') => Math.min(...xs.map((x) => x[k]).filter(Number.isFinite));
  const requestsBetweenHalves = ((requests - first.r.count) / 2);
  const per100k = (d: number) => (d / requestsBetweenHalves) * 100_000;
  const rssDelta = trough(trace.slice(half), 'rss') - trough(trace.slice(0, half), 'rss');
  const heapDelta = trough(trace.slice(half), 'heap') - trough(trace.slice(0, half), 'heap');
  const rssPer100k = per100k(rssDelta);
  const heapPer100k = per100k(heapDelta);
  const rssGrowth = rssDelta;
  samples.push(`troughs first/second half: RSS ${trough(trace.slice(0, half), 'rss').toFixed(1)}/${trough(trace.slice(half), 'rss').toFixed(1)} MiB, heap ${trough(trace.slice(0, half), 'heap').toFixed(1)}/${trough(trace.slice(half), 'heap').toFixed(1)} MiB; growth per 100k requests: RSS ${rssPer100k.toFixed(1)} MiB, heap ${heapPer100k.toFixed(1)} MiB; fds ${first.fds}→${last.fds}`);
  assert.ok(last.fds <= first.fds + 10, `fd leak: ${first.fds} → ${last.fds}`);
  // p99 stays in one range (a real API server on a shared 2-core machine: generous bound, no trend).
  const p99s = windows.map((w) => w.r.p99Ms);
  assert.ok(Math.max(...p99s) < 2_000, `p99 per window ${p99s.map((p) => p.toFixed(0)).join('/')} ms`);
  // Memory flat: the second half's heap trough is not above the first half's by more than a little.
  assert.ok(heapDelta < 32, `heap troughs grew ${heapDelta.toFixed(1)} MiB between the halves`);
  return {
    scenario: `soak ${(o.windows * o.windowMs) / 1000} s at ${o.rps}/s, GameServers re-readied`, requests, rps: requests / ((o.windows * o.windowMs) / 1000),
    faults: 0, badInputs: 0, doubles, lost, p99Ms: Math.max(...windows.map((w) => w.r.p99Ms)), rssGrowthMiB: rssGrowth,
    note: `growth per 100k requests (trough to trough): RSS ${rssPer100k.toFixed(1)} MiB, heap ${heapPer100k.toFixed(1)} MiB; p99 per window ${windows.map((w) => w.r.p99Ms.toFixed(0)).join('/')} ms`,
    samples,
  };
}
