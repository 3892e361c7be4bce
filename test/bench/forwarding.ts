// Benchmark: forwarding overhead. The same Allocate load (ghz, its own process) goes (1) straight
// to a remote gateway and (2) through a front gateway whose policy forwards it there. Prints
// latency p50/p99 and CPU per call, and the overhead as ratios and absolute additions.
// Runnable alone: `node test/bench/forwarding.ts` (about a minute); `npm run bench` calls benchForwarding().
import { mkdirSync, mkdtempSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCerts } from '../helpers/certs.ts';
import { cpuSeconds, GATEWAY_NODE_FLAGS, ghz, ghzPath, ROOT, spawnNode, table, writeFleet, type BenchResult, type Certs, type LoadResult } from './harness.ts';

function gatewayArgs(certs: Certs, fleet: string, extra: string[] = []): string[] {
  return [
    ...GATEWAY_NODE_FLAGS, join(ROOT, 'src/main.ts'), '--grpc.host=127.0.0.1', '--grpc.port=0', '--rest.host=127.0.0.1', '--rest.port=0', '--ops.host=127.0.0.1', '--ops.port=0',
    `--tls.certFile=${certs.serverCertFile}`, `--tls.keyFile=${certs.serverKeyFile}`, `--tls.clientCaDir=${certs.clientCaDir}`,
    '--cluster.kind=memory', `--cluster.fleetFile=${fleet}`, '--log.level=info', ...extra,
  ];
}

export async function benchForwarding(opts: { total: number; concurrency: number }): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-fwd-'));
  const certs = makeCerts(join(dir, 'pki'), 'bench-client');
  const bin = ghzPath();
  // A constant pool: Allocated GameServers re-allocated by an ALLOCATED selector, so the remote's
  // pick cost does not drift as the run consumes Ready ones (that is the engine's benchmark).
  const remoteFleet = join(dir, 'remote.yaml');
  writeFileSync(remoteFleet, [
    'nodes: [{ name: node-0, addresses: [{ type: InternalIP, address: 10.0.0.1 }] }]',
    'fleets: [{ name: bench, namespace: default, replicas: 200, state: Allocated, labels: { mode: bench }, ports: [{ name: default, basePort: 1000 }] }]', '',
  ].join('\n'));
  const emptyFleet = writeFleet(join(dir, 'empty.yaml'), 0);
  const remote = await spawnNode(gatewayArgs(certs, remoteFleet), (l) => l.msg === 'gateway listening');
  const procs = [remote];
  try {
    const remotePort = Number(remote.line.grpcPort);
    const secret = join(dir, 'policies', 'secrets', 'remote');
    mkdirSync(secret, { recursive: true });
    copyFileSync(certs.clientCertFile, join(secret, 'tls.crt'));
    copyFileSync(certs.clientKeyFile, join(secret, 'tls.key'));
    copyFileSync(certs.caFile, join(secret, 'ca.crt'));
    const policyFile = join(dir, 'policies', 'policies.yaml');
    writeFileSync(policyFile, [
      'apiVersion: multicluster.agones.dev/v1', 'kind: GameServerAllocationPolicy', 'metadata: { name: remote, namespace: default }',
      `spec: { priority: 1, weight: 1, connectionInfo: { clusterName: remote, namespace: default, secretName: remote, allocationEndpoints: ["127.0.0.1:${remotePort}"] } }`, '',
    ].join('\n'));
    const front = await spawnNode(gatewayArgs(certs, emptyFleet, ['--multiCluster.policySource=file', `--multiCluster.policyFile=${policyFile}`]), (l) => l.msg === 'gateway listening');
    procs.push(front);
    const data = { namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'bench' }, gameServerState: 'ALLOCATED' }] };
    const forwarded = { ...data, multiClusterSetting: { enabled: true } };
    const run = (port: number, pid: number, d: unknown, total: number): LoadResult =>
      ghz({ ghz: bin, certs, port, pid, concurrency: opts.concurrency, total, data: d });
    // warm-up: connections, JIT, the front's capacity cache
    run(remotePort, remote.pid, data, 500);
    run(Number(front.line.grpcPort), front.pid, forwarded, 500);
    // Two rounds, interleaved; the second is reported (the first finishes warming up).
    let direct = run(remotePort, remote.pid, data, opts.total);
    let cpuRemote0 = cpuSeconds(remote.pid);
    let via = run(Number(front.line.grpcPort), front.pid, forwarded, opts.total);
    let remoteCpuDuringVia = cpuSeconds(remote.pid) - cpuRemote0;
    direct = run(remotePort, remote.pid, data, opts.total);
    cpuRemote0 = cpuSeconds(remote.pid);
    via = run(Number(front.line.grpcPort), front.pid, forwarded, opts.total);
    remoteCpuDuringVia = cpuSeconds(remote.pid) - cpuRemote0;
    const us = (s: number, n: number) => (s / n) * 1e6;
    const directCpu = us(direct.cpuSeconds, direct.ok || 1);
    const frontCpu = us(via.cpuSeconds, via.ok || 1);
    const remoteCpuVia = us(remoteCpuDuringVia, via.ok || 1);
    // Added by forwarding: what the front and the remote spend per forwarded call, minus what the
    // remote alone spends per direct call.
    const addedCpu = frontCpu + remoteCpuVia - directCpu;
    const addedP50 = via.p50Ms - direct.p50Ms;
    const rows: (string | number)[][] = [
      ['path', 'ok', 'rps', 'p50 ms', 'p99 ms', 'CPU µs/call (front)', 'CPU µs/call (remote)'],
      ['client → remote', direct.ok, direct.rps, direct.p50Ms, direct.p99Ms, '-', directCpu],
      ['client → front → remote', via.ok, via.rps, via.p50Ms, via.p99Ms, frontCpu, remoteCpuVia],
    ];
    const ratios = [
      `forwarding adds p50 +${(via.p50Ms - direct.p50Ms).toFixed(3)} ms (×${(via.p50Ms / direct.p50Ms).toFixed(2)}), p99 +${(via.p99Ms - direct.p99Ms).toFixed(3)} ms (×${(via.p99Ms / direct.p99Ms).toFixed(2)})`,
      `CPU added per forwarded call ${addedCpu.toFixed(0)} µs (front ${frontCpu.toFixed(0)} + remote ${remoteCpuVia.toFixed(0)} − direct ${directCpu.toFixed(0)}); target ≤ 120 µs added; p50 added ${addedP50.toFixed(3)} ms, target ≤ 0.5 ms`,
      `codes direct ${JSON.stringify(direct.codes)}, forwarded ${JSON.stringify(via.codes)}; concurrency ${opts.concurrency}, ${opts.total} calls each`,
    ];
    const checks = [
      { figure: 'forwarding: p50 added', measured: addedP50, target: 0.5, unit: 'ms' },
      { figure: 'forwarding: CPU added per call', measured: addedCpu, target: 120, unit: 'µs' },
      { figure: 'forwarding: failed calls', measured: direct.count - direct.ok + via.count - via.ok, target: 0, unit: 'calls' },
    ];
    return { text: `== forwarding overhead (ghz, mTLS, embedded clusters, gateway defaults)\n${table(rows)}\n${ratios.join('\n')}`, checks };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const total = Number(process.env.BENCH_FORWARDING_CALLS ?? 3_000);
  const timer = setTimeout(() => {
    process.stderr.write('forwarding bench: over 2 minutes, giving up\n');
    process.exit(1);
  }, 120_000);
  timer.unref();
  process.stdout.write(`${(await benchForwarding({ total, concurrency: 8 })).text}\n`);
  clearTimeout(timer);
}
