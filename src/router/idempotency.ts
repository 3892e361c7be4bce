// Idempotency keys: a repeat of a request with the same key (same caller, same namespace)
// returns the allocation the first one made, on any replica. The key is claimed in a ledger
// shared by the replicas (a Lease per key in Kubernetes) before routing, so two replicas
// receiving the same key at once never both allocate: the second waits for the first's result.
import { createHash } from 'node:crypto';
import type { Allocation } from '../allocation/types.ts';

export { CLUSTER_ANNOTATION, IDEMPOTENCY_ANNOTATION, IDEMPOTENCY_REQUEST_ANNOTATION } from '../allocation/reserved-annotations.ts';

export { REQUEST_ID_ANNOTATION } from '../allocation/request-id.ts';

/** The key as stored and forwarded: scoped by namespace and caller identity, never the raw key. */
export function idempotencyHash(namespace: string, identity: string | null, key: string): string {
  return createHash('sha256').update(namespace).update('\0').update(identity ?? '').update('\0').update(key).digest('hex').slice(0, 40);
}

/** What claiming a key found. */
export type Claim =
  /** Ours: route the request, then complete() or release(). */
  | { readonly kind: 'won' }
  /** Already served: return this (if `fingerprint` is the repeat's). */
  | { readonly kind: 'done'; readonly allocation: Allocation; readonly fingerprint: string }
  /** Another replica (or request) holds it and has not finished. */
  | { readonly kind: 'pending'; readonly holder: string; readonly fingerprint: string };

/** Shared record of keys being served and their results. */
export interface IdempotencyLedger {
  /**
   * Claims `hash` in `namespace` for at most holdMs (then another replica may take it over),
   * recording the fingerprint of the request it is used with ('' = unknown, as in older records).
   */
  claim(namespace: string, hash: string, holdMs: number, signal: AbortSignal, fingerprint: string): Promise<Claim>;
  /** Stores the result of a won claim; later claims get it until the retention passes. */
  complete(namespace: string, hash: string, allocation: Allocation): Promise<void>;
  /** Gives up a won claim (the route failed): a retry may try again. */
  release(namespace: string, hash: string): Promise<void>;
  close(): Promise<void>;
}

interface MemoryRecord {
  holder: string;
  fingerprint: string;
  until: number;
  allocation: Allocation | null;
}

/** A ledger in process memory: enough for one replica (the embedded cluster). */
export class MemoryIdempotencyLedger implements IdempotencyLedger {
  readonly #records = new Map<string, MemoryRecord>();
  readonly #retentionMs: number;
  readonly #holder: string;
  readonly #maxRecords: number;
  readonly #timer: NodeJS.Timeout;

  constructor(opts: { retentionMs: number; holder: string; maxRecords?: number }) {
    this.#retentionMs = opts.retentionMs;
    this.#holder = opts.holder;
    this.#maxRecords = opts.maxRecords ?? 100_000;
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const [k, r] of this.#records) if (r.until < now) this.#records.delete(k);
    }, 60_000);
    this.#timer.unref();
  }

  async claim(namespace: string, hash: string, holdMs: number, _signal: AbortSignal, fingerprint: string): Promise<Claim> {
    const id = `${namespace}/${hash}`;
    const r = this.#records.get(id);
    const now = Date.now();
    if (r && r.until >= now) {
      if (r.allocation) return { kind: 'done', allocation: r.allocation, fingerprint: r.fingerprint };
      return { kind: 'pending', holder: r.holder, fingerprint: r.fingerprint };
    }
    this.#records.set(id, { holder: this.#holder, fingerprint, until: now + holdMs, allocation: null });
    return { kind: 'won' };
  }

  async complete(namespace: string, hash: string, allocation: Allocation): Promise<void> {
    const id = `${namespace}/${hash}`;
    // A local GameServer in the request's namespace carries the key as an annotation, which the
    // router finds first on a repeat: no record needed. Keeping one per key held a copy of every
    // allocation for the whole retention (memory grew without bound under a flood of keys).
    if (allocation.source === 'local' && allocation.namespace === namespace) {
      this.#records.delete(id);
      return;
    }
    const fingerprint = this.#records.get(id)?.fingerprint ?? '';
    this.#records.delete(id); // re-inserted last: the Map stays oldest-first
    this.#records.set(id, { holder: this.#holder, fingerprint, until: Date.now() + this.#retentionMs, allocation });
    // Remote results are kept, but never more than maxRecords: the oldest go first.
    while (this.#records.size > this.#maxRecords) {
      const oldest = this.#records.keys().next().value;
      if (oldest === undefined) break;
      this.#records.delete(oldest);
    }
  }

  async release(namespace: string, hash: string): Promise<void> {
    this.#records.delete(`${namespace}/${hash}`);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
  }
}
