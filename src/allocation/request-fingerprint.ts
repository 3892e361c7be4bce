// A request's fingerprint: the same decoded request always gives the same one, whatever the
// order of its map entries, so an idempotency key can be held to the request it was first used with.
import { createHash } from 'node:crypto';
import { REQUEST_ID_ANNOTATION } from './request-id.ts';
import type { AllocationRequest } from './types.ts';

/** JSON with object keys sorted at every level (arrays keep their order: selectors are ordered). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v) ?? 'null';
}

/** Hex digest of a value's canonical JSON: fixed-size, whatever the value's size or map order. */
export function digestOf(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('hex').slice(0, 32);
}

/** Hex digest of the validated request (without its request identifier, which each attempt may set anew). */
export function requestFingerprint(req: AllocationRequest): string {
  const annotations = Object.fromEntries(Object.entries(req.metadata.annotations).filter(([k]) => k !== REQUEST_ID_ANNOTATION));
  const fingerprinted = { ...req, metadata: { labels: req.metadata.labels, annotations } };
  return digestOf(fingerprinted);
}
