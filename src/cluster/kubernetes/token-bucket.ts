// Client-side rate limit on API server writes: a token bucket of `burst` tokens refilled at `qps`.

/** A reservation-style token bucket: take() waits for its turn, in call order. */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /** qps <= 0 or Infinity disables the limit. */
  constructor(qps: number, burst: number, now: () => number = () => performance.now()) {
    this.#qps = qps;
    this.#burst = Math.max(1, burst);
    this.#now = now;
    this.#tokens = this.#burst;
    this.#last = now();
  }

  /** Milliseconds the caller must wait for its token (0 = go now); the token is reserved. */
  reserve(): number {
    if (!(this.#qps > 0) || this.#qps === Infinity) return 0;
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#qps) / 1000);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.#qps;
  }

  /** Returns a reserved token that will not be used. */
  cancel(): void {
    if (this.#qps > 0 && this.#qps !== Infinity) this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }

  /** Resolves when a token is available; rejects with the signal's reason (token returned) if aborted first. */
  async take(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const waitMs = this.reserve();
    if (waitMs === 0) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        this.cancel();
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, waitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
