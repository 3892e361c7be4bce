// A caller process for fault scenarios that need per-call outcomes: sends Allocate at a steady
// rate, each call with its own idempotency key, and on a failure that may be transient retries
// the same key on the next gateway until told. Prints one JSON line: every key's outcome.
// Usage: node caller.ts '<json options>'
import { readFileSync } from 'node:fs';
import { createAllocatorClient, type AllocatorError } from '../../src/client/index.ts';

interface Options {
  readonly addresses: string[];
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly total: number;
  readonly rps: number;
  readonly deadlineMs: number;
  readonly request: Record<string, unknown>;
  readonly keyPrefix: string;
  /** Give up on a key after retrying this long. */
  readonly retryForMs: number;
}

const o = JSON.parse(process.argv[2]!) as Options;
const clients = o.addresses.map((address) =>
  createAllocatorClient({ address, ca: readFileSync(o.caFile), cert: readFileSync(o.certFile), key: readFileSync(o.keyFile), serverName: 'localhost' }),
);
const FINAL = new Set(['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT', 'PERMISSION_DENIED', 'UNAUTHENTICATED', 'FAILED_PRECONDITION']);
const results: { key: string; name?: string; code?: string; tries: number; latencyMs: number }[] = [];
const started = Date.now();

async function one(i: number): Promise<void> {
  const key = `${o.keyPrefix}-${i}`;
  const t0 = Date.now();
  let tries = 0;
  let last = '';
  for (let target = i % clients.length; Date.now() - t0 < o.retryForMs; target = (target + 1) % clients.length) {
    tries++;
    try {
      const r = await clients[target]!.allocate(o.request as never, { deadline: o.deadlineMs, idempotencyKey: key });
      results.push({ key, name: r.gameServerName, tries, latencyMs: Date.now() - t0 });
      return;
    } catch (err) {
      last = (err as AllocatorError).codeName ?? String(err);
      if (FINAL.has(last)) break;
      await new Promise((r) => setTimeout(r, 100 * Math.min(tries, 10)));
    }
  }
  results.push({ key, code: last, tries, latencyMs: Date.now() - t0 });
}

const pending: Promise<void>[] = [];
for (let i = 0; i < o.total; i++) {
  const due = started + (i * 1000) / o.rps;
  const wait = due - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  pending.push(one(i));
}
await Promise.all(pending);
for (const c of clients) c.close();
process.stdout.write(`${JSON.stringify({ results, ms: Date.now() - started })}\n`);
process.exit(0);
