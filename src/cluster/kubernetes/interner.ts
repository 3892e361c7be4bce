// The GameServers of a fleet repeat each other: the same namespace, label set, counters at their
// initial values, address types, port names. The cache holds 100,000s of them, so what repeats is
// kept once: a string or a frozen value is swapped for an equal one already held. V8 shares only
// the shortest strings of a JSON text by itself.

/** Distinct values remembered; past it the table starts over (shared copies stay valid). */
const DEFAULT_LIMIT = 10_000;
/** Longer texts are not held: a big annotation (up to 256 KiB) is rarely repeated, and 10,000 of them would not fit. */
const MAX_KEY_LENGTH = 1_024;

export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #values = new Map<string, unknown>();
  readonly #limit: number;

  constructor(limit = DEFAULT_LIMIT) {
    this.#limit = limit;
  }

  /** An equal string already held, or `s` (then held). */
  string(s: string): string {
    if (s.length > MAX_KEY_LENGTH) return s;
    const held = this.#strings.get(s);
    if (held !== undefined) return held;
    if (this.#strings.size >= this.#limit) this.#strings.clear(); // churned-through values (e.g. per-allocation labels) must not pile up
    this.#strings.set(s, s);
    return s;
  }

  /**
   * An equal frozen value already held under `key` (a canonical text of it, e.g. its JSON), or
   * `make()` frozen and held. Callers must treat shared values as immutable: they are frozen.
   */
  value<T extends object>(key: string, make: () => T): Readonly<T> {
    if (key.length > MAX_KEY_LENGTH) return Object.freeze(make());
    const held = this.#values.get(key);
    if (held !== undefined) return held as T;
    if (this.#values.size >= this.#limit) this.#values.clear();
    const v = Object.freeze(make());
    this.#values.set(key, v);
    return v;
  }
}
