// Load for reliability scenarios: the caller process (caller.ts, asynchronous, so faults can be
// injected while it runs), process measurements from /proc, and the scenario result row.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TestCerts } from '../helpers/certs.ts';
import type { CallerOptions, CallerOutput, CallRecord } from './caller.ts';
import { auditedNames } from './ledger.ts';

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

const CALLER = fileURLToPath(new URL('./caller.ts', import.meta.url));

/** Runs the load process (caller.ts) without blocking this event loop; every call's record comes back. */
export function runCaller(o: Omit<CallerOptions, 'caFile' | 'certFile' | 'keyFile'>, certs: { caFile: string; clientCertFile: string; clientKeyFile: string }): Promise<CallerOutput & { outerMs: number }> {
  const t0 = performance.now();
  const opts: CallerOptions = { ...o, caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CALLER, JSON.stringify(opts)], { encoding: 'utf8', maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`caller failed: ${err.message}\n${stderr.slice(-2_000)}`));
      resolve({ ...(JSON.parse(stdout.trim().split('\n').at(-1)!) as CallerOutput), outerMs: performance.now() - t0 });
    });
  });
}

/** Calls by what they ended with: 'OK', or code/reason (e.g. 'UNAVAILABLE/OVERLOADED'). */
export function tally(results: readonly CallRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const k = r.outcome === 'told' ? 'OK' : `${r.code}/${r.reason ?? r.outcome}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Outcomes outside `allowed` ('OK' or 'CODE/REASON'), with counts. */
export function unexpected(results: readonly CallRecord[], allowed: readonly string[]): string[] {
  return Object.entries(tally(results)).filter(([k]) => !allowed.includes(k)).map(([k, n]) => `${k}×${n}`);
}

export function p99Of(results: readonly CallRecord[]): number {
  const s = results.map((r) => r.endedAt - r.startedAt).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? NaN;
}

/**
 * Waits until a child gateway has audited `n` allocations since log line `from`: a fault goes in
 * once the load is being served (the load process may start late on a loaded machine), not after
 * a guess at when that happens.
 */
export async function untilServed(gw: { readonly name: string; readonly logs: readonly Record<string, unknown>[] }, n: number, from = 0): Promise<void> {
  for (const end = Date.now() + 60_000; auditedNames(gw.logs.slice(from)).length < n; await sleep(50)) {
    if (Date.now() > end) throw new Error(`${gw.name}: fewer than ${n} allocations served within 60 s`);
  }
}

/** Calls in flight at `at` (Date.now() ms): started before, ended after. */
export function inFlightAt(results: readonly CallRecord[], at: number): CallRecord[] {
  return results.filter((r) => r.startedAt <= at && r.endedAt >= at);
}

/** Allocated / Ready counts of a namespace as a gateway's GatewayService.GetCapacity reports them. */
export async function capacityOf(address: string, certs: Pick<TestCerts, 'caFile' | 'clientCertFile' | 'clientKeyFile'>, namespace: string): Promise<{ ready: number; allocated: number }> {
  const grpc = await import('@grpc/grpc-js');
  const { gatewayServiceDefinition } = await import('../../src/remote/gateway-proto.ts');
  const Ctor = grpc.makeGenericClientConstructor(gatewayServiceDefinition as never, 'GatewayService');
  const client = new Ctor(address, grpc.credentials.createSsl(readFileSync(certs.caFile), readFileSync(certs.clientKeyFile), readFileSync(certs.clientCertFile)), {
    'grpc.ssl_target_name_override': 'localhost',
  }) as unknown as { GetCapacity(req: object, opts: object, cb: (e: Error | null, r: any) => void): void; close(): void };
  try {
    const r = await new Promise<any>((resolve, reject) => client.GetCapacity({ namespaces: [namespace] }, { deadline: Date.now() + 5_000 }, (e, res) => (e ? reject(e) : resolve(res))));
    const total = r.namespaces?.[namespace]?.total ?? { ready: '0', allocated: '0' };
    return { ready: Number(total.ready), allocated: Number(total.allocated) };
  } finally {
    client.close();
  }
}
