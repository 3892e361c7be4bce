// One deadline budget per route: every attempt takes its deadline from it, never beyond the
// caller's, and no attempt starts with too little time left to be useful.

export class Budget {
  readonly #deadlineMs: number;
  readonly #now: () => number;

  /** @param deadlineMs absolute epoch ms (the caller's deadline). */
  constructor(deadlineMs: number, now: () => number = Date.now) {
    this.#deadlineMs = deadlineMs;
    this.#now = now;
  }

  get deadlineMs(): number {
    return this.#deadlineMs;
  }

  remainingMs(): number {
    return Math.max(0, this.#deadlineMs - this.#now());
  }

  /** Absolute deadline for one attempt capped at capMs; null if less than minUsefulMs is left. */
  forAttempt(capMs: number, minUsefulMs = 20): number | null {
    const left = this.remainingMs();
    return left < minUsefulMs ? null : this.#now() + Math.min(capMs, left);
  }
}
