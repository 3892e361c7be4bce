// Shared pieces of the benchmarks: processes under test, ghz runs, CPU accounting from /proc.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
const CLK_TCK = 100;

/** The ghz binary (built on first use). */
export function ghzPath(): string {
  return execFileSync('bash', [join(ROOT, 'test/bench/tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** The node flags the image runs the gateway with (deploy/Dockerfile's ENTRYPOINT, between node and main.ts). */
export const GATEWAY_NODE_FLAGS: readonly string[] = (() => {
  const line = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8'))?.[1];
  if (line === undefined) throw new Error('deploy/Dockerfile has no ENTRYPOINT [...] line');
  const argv = JSON.parse(line) as string[];
  return argv.slice(1, argv.findIndex((a) => a.endsWith('/main.ts')));
})();

/** Resident set size in MiB. */
export function rssMiB(pid: number): number {
  return statusMiB(pid, 'VmRSS');
}

/** The process's peak RSS so far (VmHWM). */
export function peakRssMiB(pid: number): number {
  return statusMiB(pid, 'VmHWM');
}

function statusMiB(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * Spawns a node process whose stdout goes to a file (never a pipe: a benchmark runs ghz
 * synchronously, and a full pipe would stall the process under test in its logger), and waits
 * until a JSON line of that file satisfies `ready`.
 */
export async function spawnNode(args: string[], ready: (line: Record<string, unknown>) => boolean, env: NodeJS.ProcessEnv = {}): Promise<Proc & { line: Record<string, unknown>; logFile: string }> {
  const logFile = join(mkdtempSync(join(tmpdir(), 'gw-proc-')), 'stdout.log');
  const fd = openSync(logFile, 'w');
  // BENCH_CPU_PROF_DIR=dir writes a V8 CPU profile of every process under test there.
  const prof = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const child = spawn(process.execPath, [...prof, ...args], { cwd: ROOT, stdio: ['ignore', fd, 'inherit'], env: { ...process.env, ...env } });
  closeSync(fd);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const poll = setInterval(() => {
      for (const l of readFileSync(logFile, 'utf8').split('\n')) {
        try {
          const j = JSON.parse(l) as Record<string, unknown>;
          if (ready(j)) {
            clearInterval(poll);
            return resolve(j);
          }
        } catch {
          // not JSON
        }
      }
      if (exited !== null) {
        clearInterval(poll);
        reject(new Error(`${args.join(' ')} exited with ${exited} before it was ready`));
      }
    }, 50);
  });
  return {
    logFile,
    child,
    pid: child.pid!,
    line,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      }),
  };
}

export interface Certs {
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCaDir: string;
}

export interface LoadResult {
  readonly count: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  readonly codes: Record<string, number>;
  /** CPU seconds the target process used during the run. */
  readonly cpuSeconds: number;
}

let protosetFile: string | undefined;

/**
 * A descriptor set of the wire contract, built by buf: ghz's own .proto parser rejects proto3
 * `optional` (AllocationResponse.metadata).
 */
export function protoset(): string {
  if (!protosetFile) {
    protosetFile = join(mkdtempSync(join(tmpdir(), 'gw-protoset-')), 'allocation.binpb');
    execFileSync(join(ROOT, 'node_modules/.bin/buf'), ['build', join(ROOT, 'proto'), '--path', join(ROOT, 'proto/allocation'), '-o', protosetFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return protosetFile;
}

/** Runs ghz from its own process against a target and accounts the target's CPU. */
export function ghz(o: { ghz: string; certs: Certs; port: number; pid: number; concurrency: number; total: number; data: unknown; connections?: number; metadata?: Record<string, string> }): LoadResult {
  const cpu0 = cpuSeconds(o.pid);
  const out = execFileSync(o.ghz, [
    '--cacert', o.certs.caFile, '--cert', o.certs.clientCertFile, '--key', o.certs.clientKeyFile, '--cname', 'localhost',
    '--protoset', protoset(), '--call', 'allocation.AllocationService/Allocate', '-d', JSON.stringify(o.data),
    ...(o.metadata ? ['-m', JSON.stringify(o.metadata)] : []),
    '-c', String(o.concurrency), '-n', String(o.total), '--connections', String(o.connections ?? 1),
    '--format', 'json', `127.0.0.1:${o.port}`,
  ], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const cpu = cpuSeconds(o.pid) - cpu0;
  const r = JSON.parse(out) as {
    count: number; rps: number; statusCodeDistribution?: Record<string, number>;
    latencyDistribution: { percentage: number; latency: number }[] | null;
  };
  const pct = (p: number) => (r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  const codes = r.statusCodeDistribution ?? {};
  return { count: r.count, rps: r.rps, p50Ms: pct(50), p99Ms: pct(99), ok: codes.OK ?? 0, codes, cpuSeconds: cpu };
}

/** Writes a fleet file with `replicas` Ready GameServers over `nodes` nodes. */
export function writeFleet(path: string, replicas: number, nodes = 16): string {
  const nodeList = Array.from({ length: nodes }, (_, i) => `  - { name: node-${i}, addresses: [{ type: InternalIP, address: 10.0.${i >> 8}.${i & 255} }] }`);
  writeFileSync(path, [
    'nodes:', ...nodeList,
    'fleets:',
    `  - { name: bench, namespace: default, replicas: ${replicas}, labels: { mode: bench }, ports: [{ name: default, basePort: 1000 }], counters: { rooms: { count: 0, capacity: 4 } } }`,
    '',
  ].join('\n'));
  return path;
}

/** Formats a table with aligned columns. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(2)) : c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

/** One figure next to its design.md target ("at most"), measured in this run with the gateway's defaults. */
export interface TargetCheck {
  readonly figure: string;
  /** NaN when the figure could not be measured (its benchmark was skipped or failed). */
  readonly measured: number;
  readonly target: number;
  readonly unit: string;
}

export interface BenchResult {
  readonly text: string;
  readonly checks: readonly TargetCheck[];
}

export const meets = (c: TargetCheck): boolean => Number.isFinite(c.measured) && c.measured <= c.target;

/** The targets table `npm run bench` prints last (and `--check` exits on). */
export function checksTable(checks: readonly TargetCheck[]): string {
  const fmt = (n: number, unit: string) => (Number.isFinite(n) ? `${Number.isInteger(n) ? n : n.toFixed(unit === '×' ? 2 : 3)}${unit === '×' ? '×' : ` ${unit}`}` : 'not measured');
  return table([['figure', 'measured', 'target', ''], ...checks.map((c) => [c.figure, fmt(c.measured, c.unit), `≤ ${fmt(c.target, c.unit)}`, meets(c) ? 'ok' : Number.isFinite(c.measured) ? 'MISSED' : 'MISSING'])]);
}
