// One opossum circuit breaker per remote endpoint and client credentials (tenants dialling one
// endpoint with different Secrets do not share one: a certificate refused for one says nothing
// about another's). 'failed' outcomes and authentication refusals count against it; "no
// capacity", rejections and our own cancellations leave its health untouched. A breaker
// remembers why it opened (TLS, authentication, or plain failures) and says so when it skips.
import { status } from '@grpc/grpc-js';
import CircuitBreaker from 'opossum';
import type { ErrorInfo } from '../protocol/error-info.ts';
import { classify, healthy } from './outcome.ts';

export interface BreakerSettings {
  /** Failure percentage in the rolling window that opens the breaker. */
  readonly errorThresholdPercentage: number;
  /** Calls needed in the window before the percentage counts. */
  readonly volumeThreshold: number;
  /** Open → half-open after this long. */
  readonly resetTimeoutMs: number;
  /** Rolling window length. */
  readonly rollingCountTimeoutMs: number;
}

export const DEFAULT_BREAKER: BreakerSettings = {
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  resetTimeoutMs: 5_000,
  rollingCountTimeoutMs: 10_000,
};

export type BreakerState = 'closed' | 'half-open' | 'open';

/** Why a breaker opened: the last counted failure before it did. */
export type BreakerCause = 'tls' | 'authentication' | 'failures';

/** Thrown (rejected) by fire() while the breaker is open: the call was not made. */
export class BreakerOpen extends Error {
  override readonly name = 'BreakerOpen';
  readonly openedBy: BreakerCause;

  constructor(message: string, openedBy: BreakerCause) {
    super(message);
    this.openedBy = openedBy;
  }
}

/** A failed call as the breaker sees it. */
interface CountedError {
  code?: unknown;
  details?: unknown;
  info?: ErrorInfo | null;
  tls?: unknown;
}

function causeOf(e: CountedError): BreakerCause {
  if (typeof e.tls === 'string' && e.tls !== '') return 'tls';
  if (e.code === status.UNAUTHENTICATED) return 'authentication';
  return 'failures';
}

type Action = (run: () => Promise<unknown>) => Promise<unknown>;

export class EndpointBreakers {
  readonly #settings: BreakerSettings;
  readonly #breakers = new Map<string, CircuitBreaker<[() => Promise<unknown>], unknown>>();
  readonly #lastCause = new Map<string, BreakerCause>();
  readonly #openCause = new Map<string, BreakerCause>();
  readonly #onState: (key: string, state: BreakerState, cause: BreakerCause | null) => void;

  /** `key` names an endpoint and the client credentials used on it. */
  constructor(settings: BreakerSettings, onState: (key: string, state: BreakerState, cause: BreakerCause | null) => void) {
    this.#settings = settings;
    this.#onState = onState;
  }

  #breaker(key: string): CircuitBreaker<[() => Promise<unknown>], unknown> {
    let b = this.#breakers.get(key);
    if (b) return b;
    const s = this.#settings;
    const action: Action = (run) => run();
    b = new CircuitBreaker(action, {
      name: key,
      timeout: false, // the caller's deadline governs
      errorThresholdPercentage: s.errorThresholdPercentage,
      volumeThreshold: s.volumeThreshold,
      resetTimeout: s.resetTimeoutMs,
      rollingCountTimeout: s.rollingCountTimeoutMs,
      rollingCountBuckets: 10,
      // true = the failure says nothing about the endpoint's health (with these credentials)
      errorFilter: (e: CountedError) =>
        typeof e?.code === 'number' && e.code !== status.UNAUTHENTICATED &&
        healthy(classify({ code: e.code, details: typeof e.details === 'string' ? e.details : '', info: e.info ?? null }).outcome),
    });
    b.on('failure', (e: unknown) => void this.#lastCause.set(key, causeOf(e as CountedError)));
    b.on('open', () => {
      const cause = this.#lastCause.get(key) ?? 'failures';
      this.#openCause.set(key, cause);
      this.#onState(key, 'open', cause);
    });
    b.on('halfOpen', () => this.#onState(key, 'half-open', null));
    b.on('close', () => this.#onState(key, 'closed', null));
    this.#breakers.set(key, b);
    this.#onState(key, 'closed', null);
    return b;
  }

  state(key: string): BreakerState {
    const b = this.#breakers.get(key);
    if (!b) return 'closed';
    return b.opened ? 'open' : b.halfOpen ? 'half-open' : 'closed';
  }

  /** The worst state among the keys that start with `prefix` (an endpoint, whatever the credentials). */
  worstState(prefix: string): BreakerState {
    let worst: BreakerState = 'closed';
    for (const key of this.#breakers.keys()) {
      if (!key.startsWith(prefix)) continue;
      const s = this.state(key);
      if (s === 'open') return s;
      if (s === 'half-open') worst = s;
    }
    return worst;
  }

  /** Runs `run` through the key's breaker; rejects with BreakerOpen without running it when open. */
  async fire<T>(key: string, run: () => Promise<T>): Promise<T> {
    const b = this.#breaker(key);
    try {
      return (await b.fire(run)) as T;
    } catch (err) {
      if ((err as { code?: unknown })?.code === 'EOPENBREAKER') {
        const cause = this.#openCause.get(key) ?? 'failures';
        throw new BreakerOpen(`circuit breaker is open (${cause})`, cause);
      }
      throw err;
    }
  }

  close(): void {
    for (const b of this.#breakers.values()) b.shutdown();
    this.#breakers.clear();
  }
}
