// Benchmark: Allocate on the embedded cluster vs a no-op grpc-js unary server, same machine, same mTLS
// and connection settings, load from ghz in its own process. Prints figures and ratios.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCerts } from '../helpers/certs.ts';
import { GATEWAY_NODE_FLAGS, ghz, ghzPath, ROOT, spawnNode, table, writeFleet, type BenchResult, type LoadResult, type TargetCheck } from './harness.ts';

export async function benchEmbedded(opts: { total: number }): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const certs = makeCerts(join(dir, 'pki'), 'bench-client');
  const bin = ghzPath();
  const runs = 2 * opts.total + 5_000;
  const fleet = writeFleet(join(dir, 'fleet.yaml'), runs + 1_000);
  const noop = await spawnNode([join(ROOT, 'test/bench/noop-server.ts'), certs.serverCertFile, certs.serverKeyFile, certs.clientCaDir], (l) => typeof l.port === 'number');
  const gw = await spawnNode(
    [
      ...GATEWAY_NODE_FLAGS, join(ROOT, 'src/main.ts'), '--grpc.host=127.0.0.1', '--grpc.port=0', '--rest.host=127.0.0.1', '--rest.port=0', '--ops.host=127.0.0.1', '--ops.port=0',
      `--tls.certFile=${certs.serverCertFile}`, `--tls.keyFile=${certs.serverKeyFile}`, `--tls.clientCaDir=${certs.clientCaDir}`,
      '--cluster.kind=memory', `--cluster.fleetFile=${fleet}`, '--log.level=info',
    ],
    (l) => l.msg === 'gateway listening',
    {},
  ).catch(async (err) => {
    await noop.stop();
    throw err;
  });
  try {
    return await measure(bin, certs, { port: Number(noop.line.port), pid: noop.pid }, { port: Number(gw.line.grpcPort), pid: gw.pid }, opts.total);
  } finally {
    await Promise.all([noop.stop(), gw.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(bin: string, certs: ReturnType<typeof makeCerts>, noop: { port: number; pid: number }, gw: { port: number; pid: number }, total: number): Promise<BenchResult> {
  const data = { namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'bench' } }], metadata: { labels: { match: 'bench' } } };
  const run = (t: { port: number; pid: number }, concurrency: number, n: number) => ghz({ ghz: bin, certs, port: t.port, pid: t.pid, concurrency, total: n, data });
  // Warm both (JIT, TLS session, channel) before measuring.
  run(noop, 16, Math.min(2_000, total));
  run(gw, 16, Math.min(2_000, total));
  const rows: [string, LoadResult, LoadResult][] = [];
  rows.push(['64 in flight', run(noop, 64, total), run(gw, 64, total)]);
  rows.push(['1 in flight', run(noop, 1, Math.min(2_000, total)), run(gw, 1, Math.min(2_000, total))]);
  const out: (string | number)[][] = [['scenario', 'server', 'calls ok', 'calls/s', 'p50 ms', 'p99 ms', 'CPU µs/call']];
  const lines: string[] = [];
  const checks: TargetCheck[] = [];
  for (const [name, base, ours] of rows) {
    const cpuBase = (base.cpuSeconds / base.count) * 1e6;
    const cpuOurs = (ours.cpuSeconds / ours.count) * 1e6;
    out.push([name, 'no-op grpc-js', base.ok, base.rps, base.p50Ms, base.p99Ms, cpuBase]);
    out.push([name, 'gateway (embedded)', ours.ok, ours.rps, ours.p50Ms, ours.p99Ms, cpuOurs]);
    lines.push(`${name}: CPU per Allocate / no-op call = ${(cpuOurs / cpuBase).toFixed(2)}× (target ≤ 1.30×); calls/s ratio ${(ours.rps / base.rps).toFixed(2)}; p99 ${ours.p99Ms.toFixed(2)} ms${name.startsWith('64') ? ' (target ≤ 5 ms)' : ''}`);
    if (ours.ok !== ours.count) lines.push(`  !! ${ours.count - ours.ok} gateway calls failed: ${JSON.stringify(ours.codes)}`);
    checks.push({ figure: `embedded, ${name}: CPU per Allocate / no-op call`, measured: cpuOurs / cpuBase, target: 1.3, unit: '×' });
    if (name.startsWith('64')) checks.push({ figure: `embedded, ${name}: p99`, measured: ours.p99Ms, target: 5, unit: 'ms' });
    checks.push({ figure: `embedded, ${name}: failed calls`, measured: ours.count - ours.ok, target: 0, unit: 'calls' });
  }
  const text = `Embedded cluster (gateway defaults) vs no-op grpc-js unary server with the gateway's listener settings (mTLS, 1 connection, ghz)\n${table(out)}\n${lines.join('\n')}`;
  return { text, checks };
}

if (import.meta.main) {
  const total = Number(process.env.BENCH_CALLS ?? 20_000);
  console.log((await benchEmbedded({ total })).text);
}
