// Benchmark: the gateway on a real kube-apiserver + etcd (test/cluster/control-plane.ts). Load from
// ghz in its own process. Prints allocations/s and p50/p99 with 1 and 2 gateway replicas, CPU per
// allocation of the gateway and of the API server (and etcd), a lone request's latency, and the
// GameServer cache's memory and sync time for a large pool, and throughput with Kubernetes Events on
// (the default write budget) and off, next to design.md's targets.
// Runnable alone: `node test/bench/kubernetes.ts` (about 2–3 minutes); `npm run bench` calls benchKubernetes().
// Sizes: BENCH_K8S_POOL (Ready GameServers for the load runs, default 2,000; 0 skips them),
// BENCH_K8S_LARGE (GameServers for the memory/sync run, default 20,000; 0 skips it).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeCerts } from '../helpers/certs.ts';
import { controlPlaneBinaries, ETCD_VERSION, KUBE_VERSION, startControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { cpuSeconds, GATEWAY_NODE_FLAGS, ghzPath, peakRssMiB, protoset, ROOT, rssMiB, spawnNode, table, type BenchResult, type Certs, type LoadResult, type Proc, type TargetCheck } from './harness.ts';

const execFileAsync = promisify(execFile);

export interface KubernetesBenchOptions {
  /** Ready GameServers for the allocation runs (each allocation consumes one). */
  readonly pool?: number;
  /** GameServers for the memory and sync measurement (0 = skip). */
  readonly largePool?: number;
  /** Calls in the 1-replica run (the 2-replica run makes as many, half per replica). */
  readonly calls?: number;
  /** Calls in flight in total (split over the replicas). */
  readonly concurrency?: number;
  /** Calls of the lone-request (concurrency 1) run. */
  readonly loneCalls?: number;
}

interface Gateway extends Proc {
  readonly port: number;
  readonly opsPort: number;
  /** The store's own figure: first list of every namespace into the cache. */
  readonly syncMs: number;
  readonly gameServers: number;
}

const SELECTOR = { matchLabels: { mode: 'bench' } };

/** A gateway child process on the control plane, serving `namespaces`; resolves once its cache synced. */
async function startGateway(cp: ControlPlane, certs: Certs, namespaces: string[], extraArgs: string[] = []): Promise<Gateway> {
  let listening: Record<string, unknown> | undefined;
  let synced: Record<string, unknown> | undefined;
  // BENCH_K8S_CPU_PROF=DIR writes each gateway's V8 CPU profile there (on exit)
  const prof = process.env.BENCH_K8S_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_K8S_CPU_PROF}`] : [];
  const proc = await spawnNode(
    [
      ...prof,
      ...GATEWAY_NODE_FLAGS, join(ROOT, 'src/main.ts'), '--grpc.host=127.0.0.1', '--grpc.port=0', '--rest.host=127.0.0.1', '--rest.port=0', '--ops.host=127.0.0.1', '--ops.port=0',
      `--tls.certFile=${certs.serverCertFile}`, `--tls.keyFile=${certs.serverKeyFile}`, `--tls.clientCaDir=${certs.clientCaDir}`,
      // The gateway's defaults (qps, burst and all): the figures are printed beside design.md's targets.
      '--cluster.kind=kubernetes', `--cluster.kubeconfig=${cp.kubeconfigPath}`, `--cluster.namespaces=${JSON.stringify(namespaces)}`,
      '--log.level=info', ...extraArgs,
    ],
    (l) => {
      if (l.msg === 'gateway listening') listening = l;
      if (l.msg === 'GameServer cache synced') synced = l;
      return l.msg === 'cluster cache synced; serving';
    },
  );
  return { ...proc, port: Number(listening?.grpcPort), opsPort: Number(listening?.opsPort), syncMs: Number(synced?.latencyMs), gameServers: Number(proc.line.gameServers) };
}

/** ghz from its own process, asynchronously (two runs at once for two replicas). */
async function ghzRun(bin: string, certs: Certs, port: number, concurrency: number, total: number): Promise<LoadResult> {
  const data = { namespace: 'bench', gameServerSelectors: [SELECTOR], metadata: { labels: { match: 'bench' } } };
  const { stdout } = await execFileAsync(bin, [
    '--cacert', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile, '--cname', 'localhost',
    '--protoset', protoset(), '--call', 'allocation.AllocationService/Allocate', '-d', JSON.stringify(data),
    '-c', String(concurrency), '-n', String(total), '--connections', '1', '--format', 'json', `127.0.0.1:${port}`,
  ], { maxBuffer: 64 * 1024 * 1024 });
  const r = JSON.parse(stdout) as { count: number; rps: number; statusCodeDistribution?: Record<string, number>; latencyDistribution: { percentage: number; latency: number }[] | null };
  const pct = (p: number) => (r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  const codes = r.statusCodeDistribution ?? {};
  return { count: r.count, rps: r.rps, p50Ms: pct(50), p99Ms: pct(99), ok: codes.OK ?? 0, codes, cpuSeconds: NaN };
}

interface Measured {
  readonly name: string;
  readonly ok: number;
  readonly count: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU ms per successful allocation. */
  readonly gatewayCpuMs: number;
  readonly apiServerCpuMs: number;
  readonly etcdCpuMs: number;
  /** GameServer writes per successful local allocation (1 = no lost write race). */
  readonly writesPerAlloc: number;
  readonly codes: Record<string, number>;
}

/** Sum and count of agones_gameserver_allocations_retry_total (write attempts of each local allocation). */
async function writeAttempts(opsPort: number): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  const total = (suffix: string) => [...text.matchAll(new RegExp(`^agones_gameserver_allocations_retry_total_${suffix}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { sum: total('sum'), count: total('count') };
}

/** Runs ghz against each gateway at once (concurrency and calls split evenly) and accounts CPU. */
async function measure(name: string, bin: string, certs: Certs, cp: ControlPlane, gateways: Gateway[], concurrency: number, total: number): Promise<Measured> {
  const pids = [...gateways.map((g) => g.pid), cp.apiServerPid, cp.etcd.pid];
  const attempts0 = await Promise.all(gateways.map((g) => writeAttempts(g.opsPort)));
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  const runs = await Promise.all(gateways.map((g) => ghzRun(bin, certs, g.port, Math.max(1, Math.round(concurrency / gateways.length)), Math.round(total / gateways.length))));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = pids.map((p, i) => cpuSeconds(p) - cpu0[i]!);
  const attempts1 = await Promise.all(gateways.map((g) => writeAttempts(g.opsPort)));
  const writes = attempts1.reduce((a, w, i) => a + w.sum - attempts0[i]!.sum, 0);
  const written = attempts1.reduce((a, w, i) => a + w.count - attempts0[i]!.count, 0);
  const ok = runs.reduce((n, r) => n + r.ok, 0);
  const count = runs.reduce((n, r) => n + r.count, 0);
  const per = (s: number) => (s / Math.max(1, ok)) * 1000;
  const gatewayCpu = cpu.slice(0, gateways.length).reduce((a, b) => a + b, 0);
  const codes: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.codes)) codes[k] = (codes[k] ?? 0) + v;
  return {
    name,
    ok,
    count,
    // both replicas' successes over the wall time of the slower run
    rps: gateways.length === 1 ? runs[0]!.rps : ok / seconds,
    // replicas' percentiles combined conservatively: the worse of the two
    p50Ms: Math.max(...runs.map((r) => r.p50Ms)),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    gatewayCpuMs: per(gatewayCpu),
    apiServerCpuMs: per(cpu[gateways.length]!),
    etcdCpuMs: per(cpu[gateways.length + 1]!),
    writesPerAlloc: writes / Math.max(1, written),
    codes,
  };
}

/** Kubernetes Events a gateway wrote and dropped so far (its /metrics). */
async function eventCounts(opsPort: number): Promise<{ written: number; dropped: number }> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { written: sum('gateway_kubernetes_events_written_total'), dropped: sum('gateway_kubernetes_events_dropped_total') };
}

/** POSTs `count` Ready GameServers into `namespace`, `concurrency` at a time. */
async function createPool(cp: ControlPlane, namespace: string, count: number, concurrency = 48): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const spec = { ports: [{ name: 'default', portPolicy: 'Dynamic', containerPort: 7654, protocol: 'UDP' }], template: { spec: { containers: [{ name: 'game', image: 'example.invalid/game:1' }] } } };
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const r = await cp.request('POST', `/apis/agones.dev/v1/namespaces/${namespace}/gameservers`, {
        apiVersion: 'agones.dev/v1',
        kind: 'GameServer',
        metadata: { name: `gs-${String(i).padStart(6, '0')}`, labels: { mode: 'bench', 'agones.dev/fleet': 'bench', 'agones.dev/gameserverset': 'bench-x7k2p' } },
        spec,
        status: {
          state: 'Ready', address: `10.0.${(i >> 8) & 255}.${i & 255}`, nodeName: `node-${i % 50}`,
          addresses: [{ type: 'InternalIP', address: `10.0.${(i >> 8) & 255}.${i & 255}` }], ports: [{ name: 'default', port: 7000 + (i % 1000) }],
          counters: { rooms: { count: 0, capacity: 4 } },
        },
      });
      if (r.status !== 201) throw new Error(`create GameServer ${i}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - t0) / 1000;
}

async function heapUsedMiB(opsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  const m = /^gateway_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  return m ? Number(m[1]) / 1024 / 1024 : NaN;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Time after sync before RSS is read, so that it is not the sync's peak (printed apart); V8 may still hold the list's garbage then. */
const STEADY_MS = 12_000;

/**
 * `--cache-probe KUBECONFIG NAMESPACE` (run with --expose-gc): the gateway's cache as main.ts
 * builds it (KubernetesStore + the engine's index) in a process of its own; prints the live heap
 * and RSS it adds after a full GC, so garbage from decoding the list does not count.
 */
async function cacheProbe(kubeconfig: string, namespace: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('--cache-probe needs --expose-gc');
  const { KubernetesStore } = await import('../../src/cluster/kubernetes/kubernetes-store.ts');
  const { Engine } = await import('../../src/engine/engine.ts');
  const { IDEMPOTENCY_ANNOTATION } = await import('../../src/router/idempotency.ts');
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const full = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await settle(50);
    }
    return process.memoryUsage();
  };
  const store = new KubernetesStore({ kubeConfig: kubeconfig, namespaces: [namespace] });
  const engine = new Engine(store, { playerAllocationFilter: false, maxWriteAttempts: 8, indexedAnnotations: [IDEMPOTENCY_ANNOTATION], logger: quiet });
  const before = await full();
  const t0 = performance.now();
  await engine.start();
  const syncMs = performance.now() - t0;
  const after = await full();
  process.stdout.write(`${JSON.stringify({ probe: true, gameServers: store.size, syncMs, heapBytes: after.heapUsed - before.heapUsed, rssBytes: after.rss - before.rss })}\n`);
  await engine.close();
}

/** design.md's Kubernetes targets; NaN = not measured. */
function kubernetesChecks(m: { gatewayCpuMs1: number; gatewayCpuMs2: number; loneP50Ms: number; rss100kMiB: number; sync100kS: number; failed: number }): TargetCheck[] {
  return [
    { figure: 'kubernetes: gateway CPU per allocation (1 replica)', measured: m.gatewayCpuMs1, target: 0.4, unit: 'ms' },
    { figure: 'kubernetes: gateway CPU per allocation (2 replicas)', measured: m.gatewayCpuMs2, target: 0.4, unit: 'ms' },
    { figure: 'kubernetes: lone request p50', measured: m.loneP50Ms, target: 8, unit: 'ms' },
    { figure: 'kubernetes: RSS with 100k GameServers (extrapolated)', measured: m.rss100kMiB, target: 150e6 / 2 ** 20, unit: 'MiB' },
    { figure: 'kubernetes: cache sync of 100k (extrapolated)', measured: m.sync100kS, target: 10, unit: 's' },
    { figure: 'kubernetes: failed calls', measured: m.failed, target: 0, unit: 'calls' },
  ];
}

export async function benchKubernetes(opts: KubernetesBenchOptions = {}): Promise<BenchResult> {
  const bins = controlPlaneBinaries();
  if ('missing' in bins) return { text: `== kubernetes: skipped: ${bins.missing}`, checks: kubernetesChecks({ gatewayCpuMs1: NaN, gatewayCpuMs2: NaN, loneP50Ms: NaN, rss100kMiB: NaN, sync100kS: NaN, failed: NaN }) };
  const pool = opts.pool ?? Number(process.env.BENCH_K8S_POOL ?? 2_000);
  const large = opts.largePool ?? Number(process.env.BENCH_K8S_LARGE ?? 20_000);
  const loneCallsDefault = 200;
  // warm-ups take 400; what is left is split between the 1-replica (events off, on) and 2-replica runs
  const calls = opts.calls ?? Math.floor((pool - (opts.loneCalls ?? loneCallsDefault) - 500) / 3);
  const concurrency = opts.concurrency ?? 32;
  const loneCalls = opts.loneCalls ?? loneCallsDefault;
  if (pool > 0 && (calls < 100 || 3 * calls + loneCalls + 400 > pool)) throw new Error(`pool ${pool} too small for ${calls} calls per run`);
  const started = performance.now();
  const load = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-k8s-'));
  const certs = makeCerts(join(dir, 'pki'), 'bench-client');
  const bin = ghzPath();
  const cp = await startControlPlane();
  const procs: Proc[] = [];
  const notes: string[] = [];
  try {
    let loads: { one: Measured; noEvents: Measured; two: Measured; lone: Measured; events: { written: number; dropped: number }; allocated: number } | undefined;
    if (pool > 0) {
      await cp.createNamespace('bench');
      const createSeconds = await createPool(cp, 'bench', pool);
      notes.push(`${pool} Ready GameServers created through the API in ${createSeconds.toFixed(1)} s (${(pool / createSeconds).toFixed(0)}/s)`);

      // events off first: it should be no faster than the default (events on) measured after it
      const off = await startGateway(cp, certs, ['bench'], ['--cluster.events.enabled=false']);
      procs.push(off);
      await ghzRun(bin, certs, off.port, 8, 100);
      const noEvents = await measure('1 replica, events off', bin, certs, cp, [off], concurrency, calls);
      await off.stop();
      procs.splice(0);

      // one replica (Kubernetes Events on: the default)
      const a = await startGateway(cp, certs, ['bench']);
      procs.push(a);
      await ghzRun(bin, certs, a.port, 8, 200); // warm-up: JIT, TLS, keep-alive connections to the API server
      const one = await measure('1 replica', bin, certs, cp, [a], concurrency, calls);
      const lone = await measure('1 replica, 1 in flight', bin, certs, cp, [a], 1, loneCalls);
      const events = await eventCounts(a.opsPort);

      // two replicas
      const b = await startGateway(cp, certs, ['bench']);
      procs.push(b);
      await ghzRun(bin, certs, b.port, 8, 100);
      const two = await measure('2 replicas', bin, certs, cp, [a, b], concurrency, calls);
      const allocated = (await cp.listGameServers('bench')).items.filter((g: { status: { state: string } }) => g.status.state === 'Allocated').length;
      await Promise.all(procs.splice(0).map((p) => p.stop()));
      loads = { one, noEvents, two, lone, events, allocated };
    }

    // memory and sync time of the cache for a large pool
    let memory: { liveHeapPerGsBytes: number; liveRssPerGsBytes: number; perGsBytes: number; heapPerGsBytes: number; syncS: number; rssMiB: number; peakMiB: number; syncApiCpuS: number; syncGatewayCpuS: number; baseMiB: number; createS: number } | undefined;
    if (large > 0) {
      await cp.createNamespace('bench-large');
      await cp.createNamespace('bench-empty');
      // the baseline first: its cluster-wide per-node count would read the large pool too
      const empty = await startGateway(cp, certs, ['bench-empty']);
      procs.push(empty);
      const startCpuS = cpuSeconds(empty.pid);
      await settle(STEADY_MS);
      const baseMiB = rssMiB(empty.pid);
      const baseHeap = await heapUsedMiB(empty.opsPort);
      await empty.stop();
      procs.splice(0);
      const createS = await createPool(cp, 'bench-large', large);
      notes.push(`${large} GameServers for the memory run created in ${createS.toFixed(1)} s`);
      const apiCpu0 = cpuSeconds(cp.apiServerPid);
      const full = await startGateway(cp, certs, ['bench-large']);
      procs.push(full);
      // who the sync's time goes to: the API server encoding the list, or the gateway decoding it
      const syncApiCpuS = cpuSeconds(cp.apiServerPid) - apiCpu0;
      const syncGatewayCpuS = cpuSeconds(full.pid) - startCpuS;
      if (full.gameServers !== large) notes.push(`!! the cache holds ${full.gameServers} GameServers, expected ${large}`);
      const peakMiB = peakRssMiB(full.pid); // the list's garbage at its height: what a memory limit must allow
      await settle(STEADY_MS);
      const fullMiB = rssMiB(full.pid);
      const fullHeap = await heapUsedMiB(full.opsPort);
      await full.stop();
      procs.splice(0);
      const probe = await spawnNode(['--expose-gc', join(ROOT, 'test/bench/kubernetes.ts'), '--cache-probe', cp.kubeconfigPath, 'bench-large'], (l) => l.probe === true);
      await probe.stop();
      memory = {
        liveHeapPerGsBytes: Number(probe.line.heapBytes) / Number(probe.line.gameServers),
        liveRssPerGsBytes: Number(probe.line.rssBytes) / Number(probe.line.gameServers),
        perGsBytes: ((fullMiB - baseMiB) * 1024 * 1024) / large,
        heapPerGsBytes: ((fullHeap - baseHeap) * 1024 * 1024) / large,
        syncS: full.syncMs / 1000,
        rssMiB: fullMiB,
        peakMiB,
        syncApiCpuS,
        syncGatewayCpuS,
        baseMiB,
        createS,
      };
    }

    const rows: (string | number)[][] = [['run', 'ok/calls', 'allocs/s', 'p50 ms', 'p99 ms', 'gateway CPU ms/alloc', 'API server CPU ms/alloc', 'etcd CPU ms/alloc', 'writes/alloc']];
    const target: (string | number)[][] = [['figure', 'measured', 'target (design.md) / reference']];
    if (loads) {
      const { one, noEvents, two, lone, events, allocated } = loads;
      for (const m of [one, noEvents, two, lone]) rows.push([m.name, `${m.ok}/${m.count}`, m.rps, m.p50Ms, m.p99Ms, m.gatewayCpuMs, m.apiServerCpuMs, m.etcdCpuMs, m.writesPerAlloc]);
      target.push(['gateway CPU per allocation (1 replica)', `${one.gatewayCpuMs.toFixed(2)} ms`, '≤ 0.4 ms (agones-allocator: 1.5–1.7 ms)']);
      target.push(['gateway CPU per allocation (2 replicas, summed)', `${two.gatewayCpuMs.toFixed(2)} ms`, '≤ 0.4 ms']);
      target.push(['API server CPU per allocation', `${one.apiServerCpuMs.toFixed(2)} ms`, 'reference: agones-allocator costs it 2.3–2.7 ms']);
      target.push(['lone request p50 (concurrency 1)', `${lone.p50Ms.toFixed(2)} ms`, '≤ 8 ms (no batching window)']);
      target.push(['allocations/s with Kubernetes Events on (default budget) / off', `${one.rps.toFixed(0)} / ${noEvents.rps.toFixed(0)} (${((one.rps / noEvents.rps) * 100).toFixed(0)} %)`, 'on ≥ 90 % of off']);
      target.push(['allocations/s, 1 replica / 2 replicas', `${one.rps.toFixed(0)} / ${two.rps.toFixed(0)}`, 'reference: agones-allocator 354 → 98 /s as Allocated ones pile up']);
      notes.push(`Kubernetes Events of the events-on replica (warm-up, 1 replica, 1 in flight: ${200 + calls + loneCalls} allocations): ${events.written} written, ${events.dropped} dropped over the write budget`);
      for (const m of [one, noEvents, two, lone]) if (m.ok !== m.count) notes.push(`!! ${m.name}: ${m.count - m.ok} calls failed: ${JSON.stringify(m.codes)}`);
      notes.push(`after the runs ${allocated} GameServers are Allocated (every success wrote one); the 2-replica run started with ${2 * calls + loneCalls + 400} Allocated ones in the namespace`);
      notes.push(`concurrency ${concurrency} in total (split over replicas), ${calls} calls per run, ghz with 1 connection per replica; CPU from /proc of each process during the run`);
    }
    const per100k = memory ? memory.baseMiB + (memory.perGsBytes * 100_000) / 1024 / 1024 : NaN;
    const sync100k = memory ? memory.syncS * (100_000 / large) : NaN;
    if (memory) {
      target.push([`gateway RSS with ${large} GameServers cached`, `${memory.rssMiB.toFixed(0)} MiB (serving an empty namespace: ${memory.baseMiB.toFixed(0)} MiB); +${memory.perGsBytes.toFixed(0)} B RSS, +${memory.heapPerGsBytes.toFixed(0)} B heap per GameServer (${STEADY_MS / 1000} s after sync, no forced GC)`, '']);
      target.push(['  peak RSS while syncing', `${memory.peakMiB.toFixed(0)} MiB`, '']);
      target.push(['  live cache after a full GC (store + index)', `${memory.liveHeapPerGsBytes.toFixed(0)} B heap, ${memory.liveRssPerGsBytes.toFixed(0)} B RSS per GameServer`, '']);
      const live100k = (memory.liveHeapPerGsBytes * 100_000) / 1024 / 1024;
      const at100k = large === 100_000 ? 'measured' : 'linear extrapolation';
      target.push([`  → 100k GameServers (${at100k})`, `≈ ${per100k.toFixed(0)} MiB RSS (of which live cache ≈ ${live100k.toFixed(0)} MiB of heap)`, '≤ 150 MB RSS']);
      target.push([`cache sync (list), ${large} GameServers`, `${memory.syncS.toFixed(2)} s (CPU: API server ${memory.syncApiCpuS.toFixed(2)} s, gateway ${memory.syncGatewayCpuS.toFixed(2)} s beyond an empty start)`, '']);
      target.push([`  → 100k GameServers (${at100k})`, `≈ ${sync100k.toFixed(1)} s`, '≤ 10 s']);
    }
    notes.push(`machine load average (1 min) at the start: ${load.toFixed(2)} on ${availableParallelism()} CPUs; figures from a busy machine are not comparable`);
    notes.push(`whole benchmark ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const checks = kubernetesChecks({
      gatewayCpuMs1: loads?.one.gatewayCpuMs ?? NaN, gatewayCpuMs2: loads?.two.gatewayCpuMs ?? NaN, loneP50Ms: loads?.lone.p50Ms ?? NaN,
      rss100kMiB: per100k,
      sync100kS: sync100k,
      failed: loads ? [loads.one, loads.two, loads.lone].reduce((n, m) => n + m.count - m.ok, 0) : NaN,
    });
    return { text: `== kubernetes: real kube-apiserver ${KUBE_VERSION} + etcd ${ETCD_VERSION}, ${pool} Ready GameServers, gateway defaults\n${table(rows)}\n\n${table(target)}\n${notes.join('\n')}`, checks };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main && process.argv[2] === '--cache-probe') {
  await cacheProbe(process.argv[3]!, process.argv[4]!);
} else if (import.meta.main) {
  const timer = setTimeout(() => {
    process.stderr.write('kubernetes bench: over 3 minutes, giving up\n');
    process.exit(1);
  }, 180_000);
  timer.unref();
  process.stdout.write(`${(await benchKubernetes()).text}\n`);
  clearTimeout(timer);
}
