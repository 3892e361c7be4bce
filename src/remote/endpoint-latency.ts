// Observed round-trip latency per endpoint (and client credentials), as a moving quantile over
// the recent answers: an attempt that would most likely outlive the caller's deadline is not
// started, so a slow remote (agones-allocator batches for up to 500 ms) is not left to allocate
// for a caller that has gone.

export interface EndpointLatencyOptions {
  /** Quantile of the recent samples used as the expected latency; default 0.9. */
  readonly quantile?: number;
  /** Samples kept per endpoint; default 32. */
  readonly window?: number;
  /** Samples older than this are forgotten (so a remote that got faster is tried again); default 60 s. */
  readonly maxAgeMs?: number;
  /** Endpoints tracked at most; the least recently used is dropped; default 1,024. */
  readonly maxEndpoints?: number;
  readonly now?: () => number;
}

interface Samples {
  readonly values: number[];
  readonly at: number[];
}

export class EndpointLatency {
  readonly #samples = new Map<string, Samples>();
  readonly #q: number;
  readonly #window: number;
  readonly #maxAgeMs: number;
  readonly #maxEndpoints: number;
  readonly #now: () => number;

  constructor(opts: EndpointLatencyOptions = {}) {
    this.#q = opts.quantile ?? 0.9;
    this.#window = opts.window ?? 32;
    this.#maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.#maxEndpoints = opts.maxEndpoints ?? 1_024;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Records how long a call took to answer. A call cut short without an answer (deadline, caller
   * gone) is recorded too: its real latency is at least that long.
   */
  observe(key: string, latencyMs: number): void {
    let s = this.#samples.get(key);
    if (s) this.#samples.delete(key); // re-inserted last: the Map stays least recently used first
    else s = { values: [], at: [] };
    this.#samples.set(key, s);
    s.values.push(latencyMs);
    s.at.push(this.#now());
    if (s.values.length > this.#window) {
      s.values.shift();
      s.at.shift();
    }
    while (this.#samples.size > this.#maxEndpoints) {
      const oldest = this.#samples.keys().next().value;
      if (oldest === undefined) break;
      this.#samples.delete(oldest);
    }
  }

  /** The expected latency (the quantile of recent samples), or null when nothing recent is known. */
  expectedMs(key: string): number | null {
    const s = this.#samples.get(key);
    if (!s) return null;
    const cutoff = this.#now() - this.#maxAgeMs;
    while (s.at.length > 0 && s.at[0]! < cutoff) {
      s.at.shift();
      s.values.shift();
    }
    if (s.values.length === 0) return null;
    const sorted = [...s.values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(this.#q * sorted.length) - 1)]!;
  }
}
