// Reliability scenarios on real kube-apiservers and etcd: faults of the control plane under ghz
// load, a replica SIGKILLed mid-allocation, a remote allocator killed and black-holed, and the
// soak. The clusters (not process memory) hold the truth the ledger audits.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startControlPlane, startEtcd, type ControlPlane, type EtcdHandle } from '../cluster/control-plane.ts';
import type { TestCerts } from '../helpers/certs.ts';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { blackHole, policy, policyDir } from '../multicluster/fixtures.ts';
import { auditedNames, auditLedger, LAST_ALLOCATED, replayAuditedKeys, settledAudit, snapshotItems, type ClusterSnapshot, type LedgerResult } from './ledger.ts';
import { fdCount, ghzAsync, rssMiB, sleep, unexpectedCodes, type GhzResult, type ScenarioResult } from './load.ts';
import { keyed, type Owner } from './scenarios-memory.ts';

const CALLER = fileURLToPath(new URL('./caller.ts', import.meta.url));
const FAULT_CODES = ['OK', 'Unavailable', 'DeadlineExceeded', 'Aborted'];

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

/** Ledger for a ghz phase on a Kubernetes gateway: cluster snapshots, ghz OK count, audit lines, key replay for lost replies. */
async function ghzLedger(gw: GatewayProcess, cp: ControlPlane, ns: string, before: ClusterSnapshot, r: GhzResult, prefix: string, auditFrom: number): Promise<LedgerResult> {
  await settledAudit(gw.logs);
  const logs = gw.logs.slice(auditFrom);
  const audited = auditedNames(logs);
  const after = await snapshot(cp, ns);
  const newly = auditLedger({ before, after }).newlyAllocated;
  let reclaimed = 0;
  const extra: string[] = [];
  if (newly > r.ok) {
    const client = gw.client();
    const rep = await replayAuditedKeys(logs, (key) => client.allocate({ namespace: ns }, { idempotencyKey: key, deadline: 10_000 }).then((x) => x.gameServerName), ns, [{ prefix, count: r.count }]);
    const again = auditLedger({ before, after: await snapshot(cp, ns) }).newlyAllocated;
    if (again !== newly) extra.push(`replaying keys allocated ${again - newly} more`);
    else if (rep.matched === rep.lines && rep.lines === newly) reclaimed = newly - r.ok;
  }
  const l = auditLedger({ before, after, toldCount: r.ok, audited, reclaimed });
  return { ...l, problems: [...l.problems, ...extra] };
}

/** kube-apiserver restarted, etcd paused, watch expired (410): three phases under load on one gateway. */
export async function controlPlaneFaults(owner: Owner, certs: TestCerts, env: KubeEnv, o: { phaseMs: number; rps: number }): Promise<ScenarioResult[]> {
  const ns = 'rel';
  const total = Math.round((o.phaseMs * o.rps) / 1000);
  await createPool(env.a, ns, 'cp', total * 3 + 100);
  const gw = await kubeGateway(owner, certs, env.a, ns, 'kube-faults');
  const rows: ScenarioResult[] = [];
  const phase = async (name: string, prefix: string, inject: () => Promise<void>): Promise<void> => {
    const before = await snapshot(env.a, ns);
    const auditFrom = gw.logs.length;
    const rss0 = rssMiB(gw.pid);
    const load = ghzAsync({ certs, port: gw.grpcPort, data: { namespace: ns, metadata: { labels: { req: 'r{{.RequestNumber}}' } } }, metadata: keyed(prefix), concurrency: 8, rps: o.rps, total, timeoutMs: 3_000 });
    await sleep(o.phaseMs / 4);
    await inject();
    const r = await load;
    await sleep(1_000);
    assert.deepEqual(unexpectedCodes(r, FAULT_CODES), [], name);
    const l = await ghzLedger(gw, env.a, ns, before, r, prefix, auditFrom);
    assert.deepEqual(l.problems, [], name);
    // Serving again after the fault.
    const after = await gw.client().allocate({ namespace: ns }, { deadline: 10_000 });
    assert.ok(after.gameServerName);
    rows.push({ scenario: name, requests: r.count, rps: r.rps, faults: 1, badInputs: 0, doubles: l.doubles, lost: l.lost, p99Ms: r.p99Ms, rssGrowthMiB: rssMiB(gw.pid) - rss0, note: `${r.ok} OK, ${JSON.stringify(r.codes)}` });
  };
  await phase('kube-apiserver restarted under load', 'restart', () => env.a.restartApiServer());
  await phase('etcd paused 3 s under load', 'pause', async () => {
    env.etcd.pause();
    await sleep(3_000);
    env.etcd.resume();
  });
  await phase('watch expired (410 Gone) under load', 'expired', async () => {
    await env.a.stopApiServer();
    // Another API server on the same etcd changes the namespace; etcd is compacted past the gateway's resourceVersion.
    for (let i = 0; i < 5; i++) await env.a2.createGameServer(ns, { name: `late-${i}`, labels: { pool: 'late' } });
    await env.etcd.compact();
    await env.a.startApiServer();
  });
  assert.ok(gw.logs.some((l) => /410 Gone|expired/.test(String(l.msg))), 'the gateway did not relist after 410');
  return rows;
}

interface CallerResult {
  readonly results: { key: string; name?: string; code?: string; tries: number; latencyMs: number }[];
  readonly ms: number;
}

function runCaller(o: Record<string, unknown>): Promise<CallerResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CALLER, JSON.stringify(o)], { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`caller failed: ${err.message}\n${stderr.slice(-2_000)}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as CallerResult);
    });
  });
}

const p99 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? NaN;
};

/** Two replicas on one cluster; one SIGKILLed mid-allocation; callers retry the same key on the other. */
export async function replicaKilled(owner: Owner, certs: TestCerts, env: KubeEnv, o: { total: number; rps: number }): Promise<ScenarioResult> {
  const ns = 'rel-kill';
  await createPool(env.a, ns, 'k', o.total + 50);
  const [r1, r2] = await Promise.all([kubeGateway(owner, certs, env.a, ns, 'replica-1'), kubeGateway(owner, certs, env.a, ns, 'replica-2')]);
  const before = await snapshot(env.a, ns);
  const caller = runCaller({
    addresses: [r1.address, r2.address], caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile,
    total: o.total, rps: o.rps, deadlineMs: 2_000, request: { namespace: ns }, keyPrefix: 'kill', retryForMs: 30_000,
  });
  // Kill replica 1 while it is allocating (its audit lines are still coming).
  const killAt = Date.now() + (o.total / o.rps) * 300;
  while (Date.now() < killAt) await sleep(20);
  const inFlightAtKill = r1.logs.length;
  await r1.kill('SIGKILL');
  const out = await caller;
  const told = out.results.filter((x) => x.name !== undefined).map((x) => x.name!);
  const failed = out.results.filter((x) => x.name === undefined);
  const after = await snapshot(env.a, ns);
  const l = auditLedger({ before, after, told });
  assert.deepEqual(failed.map((f) => `${f.key}: ${f.code}`), [], 'callers that retried were never told');
  assert.deepEqual(l.problems, []);
  assert.equal(l.reclaimable, 0);
  return {
    scenario: 'replica SIGKILLed mid-allocation (2 replicas, retry same key)', requests: out.results.reduce((n, x) => n + x.tries, 0), rps: o.total / (out.ms / 1000),
    faults: 1, badInputs: 0, doubles: l.doubles, lost: l.lost, p99Ms: p99(out.results.map((x) => x.latencyMs)), rssGrowthMiB: NaN,
    note: `${told.length} told, ${out.results.filter((x) => x.tries > 1).length} retried; killed after ${inFlightAtKill} log lines`,
  };
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
    addresses: [front.address], caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile,
    total: o.total, rps: o.rps, deadlineMs: 2_000, request: { namespace: 'default', multiClusterSetting: { enabled: true } }, keyPrefix: 'remote', retryForMs: 40_000,
  });
  await sleep((o.total / o.rps) * 300);
  const port = b.grpcPort;
  await b.kill('SIGKILL');
  await sleep(2_000);
  b = await kubeGateway(owner, certs, env.b, ns, 'remote-b-restarted', { grpc: { host: '127.0.0.1', port } });
  const out = await caller;
  const told = out.results.filter((x) => x.name !== undefined).map((x) => x.name!);
  const failed = out.results.filter((x) => x.name === undefined);
  const after = await snapshot(env.b, ns);
  const l = auditLedger({ before, after, told });
  assert.deepEqual(failed.map((f) => `${f.key}: ${f.code}`), [], 'callers that retried were never told');
  assert.deepEqual(l.problems, []);
  const blackHoled = front.logs.filter((x) => x.endpoint === hole).length;
  return {
    scenario: 'remote allocator SIGKILLed mid-request + black-holed endpoint', requests: out.results.reduce((n, x) => n + x.tries, 0), rps: o.total / (out.ms / 1000),
    faults: 2, badInputs: 0, doubles: l.doubles, lost: l.lost, p99Ms: p99(out.results.map((x) => x.latencyMs)), rssGrowthMiB: NaN,
    note: `${told.length} told, ${out.results.filter((x) => x.tries > 1).length} retried, ${blackHoled} black-hole attempts logged`,
  };
}

/** Soak: steady rate, GameServers re-readied as they are allocated; RSS, heap, fds and p99 over time. */
export async function soak(owner: Owner, certs: TestCerts, env: KubeEnv, o: { windows: number; windowMs: number; rps: number }): Promise<ScenarioResult & { samples: string[] }> {
  const ns = 'soak';
  await createPool(env.a, ns, 's', 400);
  const gw = await kubeGateway(owner, certs, env.a, ns, 'soak');
  const seen = new Set<string>(); // name|last-allocated: one per allocation the cluster made
  let stop = false;
  const reReadier = (async () => {
    while (!stop) {
      const list = await env.a.listGameServers(ns).catch(() => ({ items: [] }));
      for (const g of list.items as { metadata: { name: string; annotations?: Record<string, string> }; status: { state: string } }[]) {
        if (g.status.state !== 'Allocated') continue;
        seen.add(`${g.metadata.name}|${g.metadata.annotations?.[LAST_ALLOCATED] ?? ''}`);
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
  const windows: { r: GhzResult; rss: number; heap: number; fds: number }[] = [];
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
    const r = await ghzAsync({ certs, port: gw.grpcPort, data: { namespace: ns }, concurrency: 8, rps: o.rps, total: Math.round((o.windowMs * o.rps) / 1000), timeoutMs: 3_000 });
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
    if (g.status.state === 'Allocated') seen.add(`${g.metadata.name}|${g.metadata.annotations?.[LAST_ALLOCATED] ?? ''}`);
  }
  const requests = windows.reduce((n, w) => n + w.r.count, 0);
  const ok = windows.reduce((n, w) => n + w.r.ok, 0);
  for (const w of windows) assert.deepEqual(unexpectedCodes(w.r, ['OK', 'ResourceExhausted']), []);
  await settledAudit(gw.logs);
  const l = auditLedger({ newlyAllocated: seen.size, reReadied: true, toldCount: ok, audited: auditedNames(gw.logs) });
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
