// One opossum circuit breaker per remote endpoint. Only 'failed' outcomes count against an
// endpoint; "no capacity", rejections and our own cancellations leave its health untouched.
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

/** Thrown (rejected) by fire() while the breaker is open: the call was not made. */
export class BreakerOpen extends Error {
  override readonly name = 'BreakerOpen';
}

type Action = (run: () => Promise<unknown>) => Promise<unknown>;

export class EndpointBreakers {
  readonly #settings: BreakerSettings;
  readonly #breakers = new Map<string, CircuitBreaker<[() => Promise<unknown>], unknown>>();
  readonly #onState: (endpoint: string, state: BreakerState) => void;

  constructor(settings: BreakerSettings, onState: (endpoint: string, state: BreakerState) => void) {
    this.#settings = settings;
    this.#onState = onState;
  }

  #breaker(endpoint: string): CircuitBreaker<[() => Promise<unknown>], unknown> {
    let b = this.#breakers.get(endpoint);
    if (b) return b;
    const s = this.#settings;
    const action: Action = (run) => run();
    b = new CircuitBreaker(action, {
      name: endpoint,
      timeout: false, // the caller's deadline governs
      errorThresholdPercentage: s.errorThresholdPercentage,
      volumeThreshold: s.volumeThreshold,
      resetTimeout: s.resetTimeoutMs,
      rollingCountTimeout: s.rollingCountTimeoutMs,
      rollingCountBuckets: 10,
      // true = the failure says nothing about the endpoint's health
      errorFilter: (e: { code?: unknown; details?: unknown; info?: ErrorInfo | null }) =>
        typeof e?.code === 'number' && healthy(classify({ code: e.code, details: typeof e.details === 'string' ? e.details : '', info: e.info ?? null }).outcome),
    });
    b.on('open', () => this.#onState(endpoint, 'open'));
    b.on('halfOpen', () => this.#onState(endpoint, 'half-open'));
    b.on('close', () => this.#onState(endpoint, 'closed'));
    this.#breakers.set(endpoint, b);
    this.#onState(endpoint, 'closed');
    return b;
  }

  state(endpoint: string): BreakerState {
    const b = this.#breakers.get(endpoint);
    if (!b) return 'closed';
    return b.opened ? 'open' : b.halfOpen ? 'half-open' : 'closed';
  }

  /** Runs `run` through the endpoint's breaker; rejects with BreakerOpen without running it when open. */
  async fire<T>(endpoint: string, run: () => Promise<T>): Promise<T> {
    const b = this.#breaker(endpoint);
    try {
      return (await b.fire(run)) as T;
    } catch (err) {
      if ((err as { code?: unknown })?.code === 'EOPENBREAKER') throw new BreakerOpen(`circuit breaker for ${endpoint} is open`);
      throw err;
    }
  }

  close(): void {
    for (const b of this.#breakers.values()) b.shutdown();
    this.#breakers.clear();
  }
}
