// Counter counts and capacities, list capacities, selector bounds and amounts are int64 on the wire
// and in the CRD. An Int64 is a number while it is a safe integer, a bigint only beyond that, so the
// common case stays plain number arithmetic and equal values always have the same representation
// (=== and the relational operators work on any two Int64s; + and - go through add/sub).

export type Int64 = number | bigint;

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** The one representation of a value: a number when safe, else a bigint. */
export function int64(v: bigint | number): Int64 {
  if (typeof v === 'number') return v;
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

/** An exact int64 from a decimal string, a bigint or an integral number; null when not one or out of range. */
export function parseInt64(raw: string | number | bigint): Int64 | null {
  if (typeof raw === 'number') {
    if (Number.isSafeInteger(raw)) return raw;
    if (!Number.isInteger(raw)) return null;
    raw = BigInt(raw);
  }
  if (typeof raw === 'string') {
    if (!/^-?\d{1,20}$/.test(raw)) return null;
    raw = BigInt(raw);
  }
  return raw < INT64_MIN || raw > INT64_MAX ? null : int64(raw);
}

/** a + b with Go's int64 wrap-around, as Agones computes it. */
export function add(a: Int64, b: Int64): Int64 {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isSafeInteger(r)) return r;
  }
  return int64(BigInt.asIntN(64, BigInt(a) + BigInt(b)));
}

/** a - b with Go's int64 wrap-around. */
export function sub(a: Int64, b: Int64): Int64 {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isSafeInteger(r)) return r;
  }
  return int64(BigInt.asIntN(64, BigInt(a) - BigInt(b)));
}

/** Negative, zero or positive as a is below, equal to or above b. */
export function compare(a: Int64, b: Int64): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
