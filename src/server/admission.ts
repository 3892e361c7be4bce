// Admission control in front of the Allocate pipeline: a bound on calls in flight (beyond it
// OVERLOADED), a share of that bound per client identity and a token bucket per client identity
// (beyond either RATE_LIMITED), so one identity's slow or many calls cannot take every slot. All answer
// UNAVAILABLE, never RESOURCE_EXHAUSTED, which means "no game server". Refusals are cheap:
// no decoding, no routing, no state kept beyond one small bucket per recent identity.
import { AllocationError } from '../allocation/errors.ts';

export interface AdmissionOptions {
  /** Calls admitted at once across both doors; 0 = no bound. */
  readonly maxInFlight: number;
  /** Fraction of maxInFlight one client identity may hold at once (at least one call); 1 = no per-identity bound. */
  readonly perClientShare?: number;
  /** Sustained calls per second per client identity; 0 = no rate limit. */
  readonly perClientRps: number;
  /** Calls a client identity may send in a burst above its rate; default = perClientRps. */
  readonly perClientBurst?: number;
  /** Identities whose buckets are kept; the least recently seen is dropped beyond it. */
  readonly maxTrackedClients?: number;
  readonly now?: () => number;
}

/** Releases an admitted call's slot; idempotent. */
export type Release = () => void;

interface Bucket {
  tokens: number;
  last: number;
}

/** Identity under which callers without a certificate identity share one bucket. */
const ANONYMOUS = '(anonymous)';

export class Admission {
  readonly #o: AdmissionOptions;
  readonly #burst: number;
  readonly #maxTracked: number;
  readonly #now: () => number;
  // A Map iterates in insertion order: re-inserting on use keeps it least-recently-used first.
  readonly #buckets = new Map<string, Bucket>();
  // Calls in flight per identity; an entry lives only while it has one, so it is bounded by maxInFlight.
  readonly #perClient = new Map<string, number>();
  readonly #perClientMax: number;
  #inFlight = 0;
  #refusedOverload = 0;
  #refusedRate = 0;
  #refusedShare = 0;

  constructor(opts: AdmissionOptions) {
    this.#o = opts;
    this.#burst = Math.max(1, opts.perClientBurst ?? opts.perClientRps);
    this.#maxTracked = Math.max(1, opts.maxTrackedClients ?? 10_000);
    this.#now = opts.now ?? (() => performance.now());
    const share = opts.perClientShare ?? 1;
    this.#perClientMax = opts.maxInFlight > 0 && share < 1 ? Math.max(1, Math.floor(opts.maxInFlight * share)) : Infinity;
  }

  /** Calls one client identity may have in flight (Infinity = no per-identity bound). */
  get perClientMaxInFlight(): number {
    return this.#perClientMax;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Calls refused so far, by reason. */
  get refused(): { readonly overloaded: number; readonly rateLimited: number; readonly overShare: number } {
    return { overloaded: this.#refusedOverload, rateLimited: this.#refusedRate, overShare: this.#refusedShare };
  }

  /** Admits one call or throws OVERLOADED / RATE_LIMITED; the caller must call the returned release. */
  admit(identity: string | null): Release {
    const max = this.#o.maxInFlight;
    if (max > 0 && this.#inFlight >= max) {
      this.#refusedOverload++;
      throw new AllocationError('OVERLOADED', `the gateway is serving its limit of ${max} calls; retry with backoff`, {
        metadata: { maxInFlight: String(max) },
      });
    }
    const who = identity ?? ANONYMOUS;
    const held = this.#perClient.get(who) ?? 0;
    if (held >= this.#perClientMax) {
      this.#refusedShare++;
      throw new AllocationError('RATE_LIMITED', `client ${who} has its share of ${this.#perClientMax} calls in flight; retry with backoff`, {
        metadata: { identity: who, perClientMaxInFlight: String(this.#perClientMax) },
      });
    }
    if (this.#o.perClientRps > 0 && !this.#take(who)) {
      this.#refusedRate++;
      throw new AllocationError('RATE_LIMITED', `client ${who} exceeded its rate of ${this.#o.perClientRps} calls per second; retry with backoff`, {
        metadata: { identity: who, perClientRps: String(this.#o.perClientRps) },
      });
    }
    this.#inFlight++;
    this.#perClient.set(who, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      const left = (this.#perClient.get(who) ?? 1) - 1;
      if (left > 0) this.#perClient.set(who, left);
      else this.#perClient.delete(who);
    };
  }

  #take(identity: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(identity);
    if (b) {
      this.#buckets.delete(identity);
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.last) * this.#o.perClientRps) / 1000);
      b.last = now;
    } else {
      b = { tokens: this.#burst, last: now };
      if (this.#buckets.size >= this.#maxTracked) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    }
    this.#buckets.set(identity, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
