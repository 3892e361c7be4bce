// JSON without losing int64 precision (the API server's objects, results kept in Leases). Integers
// beyond 2^53 (counter counts and capacities are int64 in the CRD) are read as bigint, from
// JSON.parse's source text, and written back digit for digit (JSON.rawJSON), so a value the gateway
// did not change is never written back rounded. Texts without a 16-digit run, i.e. nearly all,
// take plain JSON.parse.

type Reviver = (key: string, value: unknown, context: { source?: string }) => unknown;
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
const parse = JSON.parse as (text: string, reviver?: Reviver) => unknown;

/** Only a run of 16 digits can hold an integer above Number.MAX_SAFE_INTEGER (9007199254740991). */
const LONG_DIGITS = /\d{16}/;
const INTEGER = /^-?\d+$/;

const exactIntegers: Reviver = (_key, value, context) =>
  typeof value === 'number' && !Number.isSafeInteger(value) && context.source !== undefined && INTEGER.test(context.source) ? BigInt(context.source) : value;

/** JSON.parse, with unsafe integers as bigint. */
export function parseExact(text: string): unknown {
  return LONG_DIGITS.test(text) ? parse(text, exactIntegers) : JSON.parse(text);
}

/** JSON.stringify that writes bigints as plain JSON integers. */
export function stringifyExact(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // "Do not know how to serialize a BigInt": the rare case
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? rawJSON(v.toString()) : v));
  }
}
