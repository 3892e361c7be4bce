// The caller's view of remote capacity: GetCapacity answers cached per target with a short
// TTL, and, for remotes that do not advertise (agones-allocator: UNIMPLEMENTED), a short
// negative cache after RESOURCE_EXHAUSTED for the same namespace and selectors.
import { digestOf } from '../allocation/request-fingerprint.ts';
import { setOwn } from '../allocation/records.ts';
import type { AllocationRequest } from '../allocation/types.ts';
import type { CapacityAnswer, RemoteTarget } from '../remote/remote-client.ts';
import type { WireNamespaceCapacity, WireStateCounts } from '../remote/gateway-proto.ts';
import { capacityVerdict, type NamespaceCapacity, type StateCounts } from './capacity.ts';

/** Why a remote target may be skipped without an Allocate call, or 'try'. */
export type CapacityDecision =
  | { readonly kind: 'try'; readonly note: string }
  | { readonly kind: 'skip'; readonly reason: string };

export interface CapacityCacheOptions {
  /** How long an advertisement is used when the remote names no TTL. */
  readonly ttlMs: number;
  /** Negative cache after RESOURCE_EXHAUSTED (same target, namespace, selectors). */
  readonly noCapacityTtlMs: number;
  /** Longest wait for a first GetCapacity answer before trying Allocate anyway. */
  readonly fetchTimeoutMs: number;
  /** How long "does not implement GetCapacity" is remembered. */
  readonly unimplementedTtlMs?: number;
  readonly fetch: (target: RemoteTarget, namespaces: readonly string[], timeoutMs: number) => Promise<CapacityAnswer>;
  readonly now?: () => number;
}

interface Entry {
  fetchedAt: number;
  ttlMs: number;
  answer: CapacityAnswer;
  namespaces: Map<string, NamespaceCapacity>;
  synced: boolean;
}

function counts(w: WireStateCounts | null | undefined): StateCounts {
  return { ready: Number(w?.ready ?? 0), allocated: Number(w?.allocated ?? 0) };
}

function fromWire(w: WireNamespaceCapacity): NamespaceCapacity {
  const fleets: Record<string, StateCounts> = {};
  for (const [k, v] of Object.entries(w.fleets ?? {})) setOwn(fleets, k, counts(v));
  const labels = new Map<string, StateCounts>();
  for (const l of w.labels ?? []) labels.set(`${l.key}\u0000${l.value}`, counts(l.counts));
  return { total: counts(w.total), fleets, labels, labelsComplete: w.labels_complete === true };
}

/** Per endpoints and client credentials: a remote may advertise differently to different callers. */
const targetKey = (t: RemoteTarget): string => `${t.endpoints.join(',')}\u0000${t.credentials}`;

/** The selectors part of a request, as a fixed-size cache key (selectors may be hundreds of KB). */
export function selectorsKey(req: AllocationRequest): string {
  return digestOf(req.selectors);
}

export class CapacityCache {
  readonly #opts: CapacityCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<Entry>>();
  readonly #negative = new Map<string, number>();
  /** Per target: whether its last GetCapacity answer said Allocate honours idempotency keys. */
  readonly #honoursKeys = new Map<string, boolean>();
  readonly #now: () => number;

  constructor(opts: CapacityCacheOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  #refresh(target: RemoteTarget, namespace: string): Promise<Entry> {
    const key = targetKey(target);
    let p = this.#pending.get(key);
    if (p) return p;
    const namespaces = new Set([namespace, ...(this.#entries.get(key)?.namespaces.keys() ?? [])]);
    p = this.#opts.fetch(target, [...namespaces], Math.max(this.#opts.fetchTimeoutMs, 1_000)).then((answer) => {
      const entry: Entry = { fetchedAt: this.#now(), ttlMs: this.#opts.ttlMs, answer, namespaces: new Map(), synced: false };
      if (answer.kind === 'capacity') {
        this.#honoursKeys.set(key, answer.response.idempotency_keys === true);
        const ttl = Number(answer.response.ttl_ms);
        if (ttl > 0) entry.ttlMs = Math.min(ttl, this.#opts.ttlMs * 10);
        entry.synced = answer.response.synced;
        for (const [ns, c] of Object.entries(answer.response.namespaces ?? {})) entry.namespaces.set(ns, fromWire(c));
      } else if (answer.kind === 'unimplemented') {
        this.#honoursKeys.set(key, false);
        entry.ttlMs = this.#opts.unimplementedTtlMs ?? 60_000;
      } else {
        entry.ttlMs = Math.min(this.#opts.ttlMs, 1_000);
      }
      this.#entries.set(key, entry);
      return entry;
    });
    p = p.finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }

  /**
   * Whether the target is a gateway whose Allocate honours the idempotency key (learned from its
   * GetCapacity answer): a keyed repeat there returns what a lost attempt allocated.
   */
  honoursIdempotencyKeys(target: RemoteTarget): boolean {
    return this.#honoursKeys.get(targetKey(target)) === true;
  }

  /** Starts fetching a target's advertisement ahead of use. */
  prefetch(target: RemoteTarget, namespace: string): void {
    const e = this.#entries.get(targetKey(target));
    if (!e || this.#now() - e.fetchedAt > e.ttlMs || !e.namespaces.has(namespace)) void this.#refresh(target, namespace).catch(() => {});
  }

  /** Whether to try Allocate on this target for this request. Waits at most waitMs for a first advertisement. */
  async decide(target: RemoteTarget, namespace: string, req: AllocationRequest, waitMs: number): Promise<CapacityDecision> {
    const negativeUntil = this.#negative.get(`${targetKey(target)}|${namespace}|${selectorsKey(req)}`);
    const now = this.#now();
    if (negativeUntil !== undefined) {
      if (negativeUntil > now) return { kind: 'skip', reason: `answered RESOURCE_EXHAUSTED for the same selectors ${Math.round(now - (negativeUntil - this.#opts.noCapacityTtlMs))} ms ago` };
      this.#negative.delete(`${targetKey(target)}|${namespace}|${selectorsKey(req)}`);
    }
    let e = this.#entries.get(targetKey(target));
    const fresh = e !== undefined && now - e.fetchedAt <= e.ttlMs && (e.answer.kind !== 'capacity' || e.namespaces.has(namespace));
    if (!fresh) {
      const refresh = this.#refresh(target, namespace);
      // A stale advertisement is still used while a new one is fetched (it is only a hint).
      if (e === undefined || (e.answer.kind === 'capacity' && !e.namespaces.has(namespace))) {
        const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, Math.min(waitMs, this.#opts.fetchTimeoutMs))).unref());
        e = (await Promise.race([refresh.catch(() => undefined), timeout])) ?? this.#entries.get(targetKey(target));
      } else {
        void refresh.catch(() => {});
      }
    }
    if (!e) return { kind: 'try', note: 'capacity unknown (no advertisement yet)' };
    if (e.answer.kind === 'unimplemented') return { kind: 'try', note: 'remote does not advertise capacity' };
    if (e.answer.kind === 'error') return { kind: 'try', note: `capacity unknown: ${e.answer.message}` };
    if (!e.synced) return { kind: 'try', note: 'remote cache not synced' };
    const c = e.namespaces.get(namespace);
    if (!c) return { kind: 'try', note: 'capacity unknown for namespace' };
    if (capacityVerdict(c, req.selectors) === 'no-match') {
      return { kind: 'skip', reason: `advertises no GameServer matching the selectors in namespace ${namespace} (Ready ${c.total.ready}, ${Math.round(now - e.fetchedAt)} ms ago)` };
    }
    return { kind: 'try', note: `advertises ${c.total.ready} Ready in ${namespace}` };
  }

  /** Records a RESOURCE_EXHAUSTED answer (negative cache) and drops the advertisement (it was wrong). */
  noteNoCapacity(target: RemoteTarget, namespace: string, req: AllocationRequest): void {
    if (this.#opts.noCapacityTtlMs <= 0) return;
    this.#negative.set(`${targetKey(target)}|${namespace}|${selectorsKey(req)}`, this.#now() + this.#opts.noCapacityTtlMs);
    if (this.#negative.size > 10_000) {
      const now = this.#now();
      for (const [k, until] of this.#negative) if (until <= now) this.#negative.delete(k);
      if (this.#negative.size > 10_000) this.#negative.clear();
    }
  }
}
