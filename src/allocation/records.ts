// Maps keyed by caller- or cluster-chosen strings: labels, annotations, counter and list names.
// Agones (Go maps) treats every key as an ordinary string; in JavaScript "constructor",
// "toString" or "__proto__" are also properties of every object. So such maps are read only
// through own() and written only through setOwn()/recordOf()/mapRecord(), never `m[k]`.

/** The value stored under `key`, never a property every object inherits (e.g. "constructor"). */
export function own<T>(m: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(m, key) ? m[key] : undefined;
}

/** Stores `value` under `key` as an own entry; for "__proto__" plain assignment would replace the prototype. */
export function setOwn<T>(m: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(m, key, { value, writable: true, enumerable: true, configurable: true });
  else m[key] = value;
}

/** A record of these entries ("__proto__" included as an ordinary key). */
export function recordOf<T>(entries: Iterable<readonly [string, T]>): Record<string, T> {
  return Object.fromEntries(entries);
}

/** `m` with every value mapped, keys kept. */
export function mapRecord<I, O>(m: Readonly<Record<string, I>>, f: (value: I, key: string) => O): Record<string, O> {
  const out: Record<string, O> = {};
  for (const k of Object.keys(m)) setOwn(out, k, f(m[k] as I, k));
  return out;
}
