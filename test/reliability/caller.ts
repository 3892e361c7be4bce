// The load process of the reliability scenarios: sends Allocate at a steady rate (or as fast as
// `concurrency` allows), each call with its own idempotency key, and records per call what the
// caller was told, from the response itself: the GameServer's name (and its last-allocated stamp),
// or the error and whether its outcome is unknown to the caller. With `retryForMs`, a failure
// that may be transient is retried with the same key on the next gateway until told.
// Prints one JSON line: every call's record. Usage: node caller.ts '<json options>'
import { readFileSync } from 'node:fs';
import { createAllocatorClient, type AllocatorClient, type AllocatorError } from '../../src/client/index.ts';

export interface CallerOptions {
  readonly addresses: string[];
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly total: number;
  /** Calls started per second; 0 = as fast as `concurrency` allows. */
  readonly rps: number;
  /** Most calls in flight at once (default: unbounded, the rate alone paces). */
  readonly concurrency?: number;
  /** Connections (channels) per address. */
  readonly connections?: number;
  readonly deadlineMs: number;
  readonly request: Record<string, unknown>;
  /** Label set to r<i> on every call's metadata (as ghz's {{.RequestNumber}} did). */
  readonly labelEach?: string;
  readonly keyPrefix: string;
  /** Retry a failure that may be transient this long (0 = never retry). */
  readonly retryForMs: number;
}

/** One call as its caller saw it. Times are Date.now() milliseconds. */
export interface CallRecord {
  readonly key: string;
  /** Told: the GameServer named in the response. */
  readonly name?: string;
  /** Its agones.dev/last-allocated annotation, from the response. */
  readonly allocatedAt?: string;
  readonly code?: string;
  readonly reason?: string | null;
  /**
   * 'told' (a name), 'refused' (the gateway answered with its own error that allocated nothing),
   * 'unknown' (no answer: connection lost, the caller's own deadline, or an error marked ambiguous).
   */
  readonly outcome: 'told' | 'refused' | 'unknown';
  readonly tries: number;
  /** Index into `addresses` of the first try. */
  readonly firstTarget: number;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Whether the first try's own outcome was unknown (an answer lost in flight). */
  readonly firstUnknown: boolean;
}

export interface CallerOutput {
  readonly results: CallRecord[];
  readonly startedAt: number;
  readonly endedAt: number;
}

/** The gateway refused and says nothing was allocated: it answered with ErrorInfo not marked ambiguous. */
export function outcomeOf(err: unknown): 'refused' | 'unknown' {
  const e = err as AllocatorError;
  if (!e?.errorInfo) return 'unknown'; // transport error or the caller's own deadline: the reply may be lost
  return e.errorInfo.metadata?.ambiguous === 'true' ? 'unknown' : 'refused';
}

const FINAL = new Set(['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT', 'PERMISSION_DENIED', 'UNAUTHENTICATED', 'FAILED_PRECONDITION']);

async function main(o: CallerOptions): Promise<void> {
  const connections = o.connections ?? 1;
  const clients: AllocatorClient[] = [];
  for (const address of o.addresses) {
    for (let c = 0; c < connections; c++) {
      // A distinct channel option gives each client its own connection.
      clients.push(createAllocatorClient({ address, ca: readFileSync(o.caFile), cert: readFileSync(o.certFile), key: readFileSync(o.keyFile), serverName: 'localhost', channelOptions: { 'test.connection': c } }));
    }
  }
  const forAddress = (a: number, i: number) => clients[a * connections + (i % connections)]!;
  const results: CallRecord[] = [];
  const startedAt = Date.now();

  async function one(i: number): Promise<void> {
    const key = `${o.keyPrefix}-${i}`;
    const request = o.labelEach ? { ...o.request, metadata: { labels: { [o.labelEach]: `r${i}` } } } : o.request;
    const t0 = Date.now();
    const first = i % o.addresses.length;
    let tries = 0;
    let firstUnknown = false;
    for (let target = first; ; target = (target + 1) % o.addresses.length) {
      tries++;
      try {
        const r = await forAddress(target, i).allocate(request as never, { deadline: o.deadlineMs, idempotencyKey: key });
        results.push({ key, name: r.gameServerName, allocatedAt: r.metadata?.annotations?.['agones.dev/last-allocated'], outcome: 'told', tries, firstTarget: first, startedAt: t0, endedAt: Date.now(), firstUnknown });
        return;
      } catch (err) {
        const e = err as AllocatorError;
        const outcome = outcomeOf(err);
        if (tries === 1) firstUnknown = outcome === 'unknown';
        const code = e.codeName ?? String(err);
        if (o.retryForMs <= 0 || FINAL.has(code) || Date.now() - t0 >= o.retryForMs) {
          results.push({ key, code, reason: e.reason ?? null, outcome, tries, firstTarget: first, startedAt: t0, endedAt: Date.now(), firstUnknown });
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * Math.min(tries, 10)));
      }
    }
  }

  const limit = o.concurrency ?? Infinity;
  let inFlight = 0;
  let freed: (() => void) | null = null;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < o.total; i++) {
    if (o.rps > 0) {
      const wait = startedAt + (i * 1000) / o.rps - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    while (inFlight >= limit) await new Promise<void>((r) => (freed = r));
    inFlight++;
    pending.push(one(i).finally(() => {
      inFlight--;
      const f = freed;
      freed = null;
      f?.();
    }));
  }
  await Promise.all(pending);
  for (const c of clients) c.close();
  const out: CallerOutput = { results, startedAt, endedAt: Date.now() };
  // Exit once the (large) line is flushed: exiting at once would cut it off in the pipe.
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
}

if (import.meta.main) await main(JSON.parse(process.argv[2]!) as CallerOptions);
