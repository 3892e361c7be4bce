// Load for reliability scenarios: ghz in its own process (asynchronous, so faults can be injected
// while it runs), process measurements from /proc, and the scenario result row.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ghzPath, protoset } from '../bench/harness.ts';
import type { TestCerts } from '../helpers/certs.ts';

export { ghzPath };

/** One row of the reliability table. */
export interface ScenarioResult {
  readonly scenario: string;
  readonly requests: number;
  /** Calls per second the load generator sustained. */
  readonly rps: number;
  readonly faults: number;
  readonly badInputs: number;
  readonly doubles: number;
  readonly lost: number;
  readonly p99Ms: number;
  /** Gateway RSS growth over the run (MiB), or NaN when not measured. */
  readonly rssGrowthMiB: number;
  readonly note?: string;
  /** Test file that printed the row (set by report()). */
  readonly file?: string;
}

export interface GhzResult {
  readonly count: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  /** How long ghz itself says the run took. */
  readonly totalMs: number;
  /** Wall-clock interval around the ghz process, measured here (contains every call it made). */
  readonly outerMs: number;
  /** ghz's status names, e.g. OK, Unavailable, ResourceExhausted, DeadlineExceeded. */
  readonly codes: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
}

export interface GhzOptions {
  readonly certs: Pick<TestCerts, 'caFile' | 'clientCertFile' | 'clientKeyFile'>;
  readonly port: number;
  /** Request JSON; ghz templates such as {{.RequestNumber}} are expanded. */
  readonly data: unknown;
  readonly metadata?: Record<string, string>;
  readonly concurrency: number;
  readonly connections?: number;
  /** Total calls (-n) and/or duration (-z, ms); with both, whichever ends first. */
  readonly total?: number;
  readonly durationMs?: number;
  /** Constant request rate (0 = as fast as possible). */
  readonly rps?: number;
  /** Per-call deadline. */
  readonly timeoutMs?: number;
}

/** Runs ghz without blocking this event loop. */
export function ghzAsync(o: GhzOptions): Promise<GhzResult> {
  const args = [
    '--cacert', o.certs.caFile, '--cert', o.certs.clientCertFile, '--key', o.certs.clientKeyFile, '--cname', 'localhost',
    '--protoset', protoset(), '--call', 'allocation.AllocationService/Allocate', '-d', JSON.stringify(o.data),
    ...(o.metadata ? ['-m', JSON.stringify(o.metadata)] : []),
    '-c', String(o.concurrency), '--connections', String(o.connections ?? 1),
    ...(o.total !== undefined ? ['-n', String(o.total)] : []),
    ...(o.durationMs !== undefined ? ['-z', `${o.durationMs}ms`] : []),
    ...(o.rps ? ['-r', String(o.rps)] : []),
    '-t', `${o.timeoutMs ?? 5_000}ms`,
    '--format', 'json', `127.0.0.1:${o.port}`,
  ];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(ghzPath(), args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      // ghz exits non-zero when calls failed; its JSON is still the report.
      const outerMs = performance.now() - t0;
      let r: {
        count: number; total: number; rps: number; statusCodeDistribution?: Record<string, number>; errorDistribution?: Record<string, number>;
        latencyDistribution: { percentage: number; latency: number }[] | null;
      };
      try {
        r = JSON.parse(stdout);
      } catch {
        return reject(new Error(`ghz failed: ${err?.message ?? ''} ${stderr.slice(-2_000)}`));
      }
      const pct = (p: number) => (r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
      const codes = r.statusCodeDistribution ?? {};
      resolve({ count: r.count, rps: r.rps, p50Ms: pct(50), p99Ms: pct(99), ok: codes.OK ?? 0, totalMs: r.total / 1e6, outerMs, codes, errors: r.errorDistribution ?? {} });
    });
  });
}

/** Resident set size (MiB) of a process. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Samples RSS every `everyMs` until stopped; returns the peak and the samples. */
export function sampleRss(pid: number, everyMs = 200): { stop(): { peakMiB: number; samples: number[] } } {
  const samples: number[] = [];
  const timer = setInterval(() => {
    try {
      samples.push(rssMiB(pid));
    } catch {
      // process gone
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { peakMiB: Math.max(...samples, 0), samples };
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Codes a healthy gateway may answer under load and faults: never INTERNAL, UNKNOWN or RESOURCE_EXHAUSTED from overload. */
export function unexpectedCodes(r: GhzResult, allowed: readonly string[]): string[] {
  return Object.entries(r.codes).filter(([c]) => !allowed.includes(c)).map(([c, n]) => `${c}×${n}: ${Object.keys(r.errors).slice(0, 3).join(' | ')}`);
}

/**
 * Counts once they have settled: GetCapacity answers from a cache refreshed at most every quarter
 * of the TTL it reports, so two equal answers further apart than that are current (no fixed
 * sleep guessing the cache period).
 */
export async function settledCapacity(address: string, certs: Pick<TestCerts, 'caFile' | 'clientCertFile' | 'clientKeyFile'>, namespace: string, maxMs = 30_000): Promise<{ ready: number; allocated: number }> {
  const end = Date.now() + maxMs;
  let prev = await capacityOf(address, certs, namespace);
  for (;;) {
    await sleep(prev.ttlMs / 4 + 50);
    const next = await capacityOf(address, certs, namespace);
    if ((next.ready === prev.ready && next.allocated === prev.allocated) || Date.now() > end) return next;
    prev = next;
  }
}

/** Allocated / Ready counts of a namespace as a gateway's GatewayService.GetCapacity reports them. */
export async function capacityOf(address: string, certs: Pick<TestCerts, 'caFile' | 'clientCertFile' | 'clientKeyFile'>, namespace: string): Promise<{ ready: number; allocated: number; ttlMs: number }> {
  const grpc = await import('@grpc/grpc-js');
  const { gatewayServiceDefinition } = await import('../../src/remote/gateway-proto.ts');
  const Ctor = grpc.makeGenericClientConstructor(gatewayServiceDefinition as never, 'GatewayService');
  const client = new Ctor(address, grpc.credentials.createSsl(readFileSync(certs.caFile), readFileSync(certs.clientKeyFile), readFileSync(certs.clientCertFile)), {
    'grpc.ssl_target_name_override': 'localhost',
  }) as unknown as { GetCapacity(req: object, opts: object, cb: (e: Error | null, r: any) => void): void; close(): void };
  try {
    const r = await new Promise<any>((resolve, reject) => client.GetCapacity({ namespaces: [namespace] }, { deadline: Date.now() + 5_000 }, (e, res) => (e ? reject(e) : resolve(res))));
    const total = r.namespaces?.[namespace]?.total ?? { ready: '0', allocated: '0' };
    return { ready: Number(total.ready), allocated: Number(total.allocated), ttlMs: Number(r.ttl_ms ?? 0) };
  } finally {
    client.close();
  }
}
