// The one rule every bad input must obey on the decode path: success, or INVALID_FIELD whose
// message starts with the offending field's path. Anything else (a TypeError, a RangeError, an
// INTERNAL, a hang) is a defect.
import { AllocationError } from '../../src/allocation/errors.ts';
import { parseExact } from '../../src/allocation/exact-json.ts';
import { requestFromWire } from '../../src/allocation/from-proto.ts';
import type { AllocationRequest } from '../../src/allocation/types.ts';
import { jsonToBinary } from '../../src/protocol/proto-json.ts';
import { RequestType } from '../../src/protocol/proto.ts';
import { decodeRequest } from '../../src/protocol/request-decoder.ts';

/** A field path at the start of a message: `namespace: …`, `gameServerSelectors[0].counters[c].minCount: …`, `(body): …`. */
const KEY = String.raw`\[([A-Za-z0-9._/-]*|\d+|"(?:[^"\\]|\\.)*")\]`;
export const FIELD_PATH = new RegExp(String.raw`^(\([a-z]+\)|[A-Za-z]+(${KEY})?(\.[A-Za-z]+(${KEY})?)*): `);

export const DECODE = { playerAllocationFilter: true } as const;

/** The gRPC door's decode path. */
export function decodeBytes(bytes: Uint8Array): AllocationRequest {
  return requestFromWire(decodeRequest(bytes), DECODE);
}

/** The REST door's decode path (after reading the body). */
export function decodeText(text: string): AllocationRequest {
  let json: unknown;
  try {
    json = text.length === 0 ? {} : parseExact(text);
  } catch {
    throw new AllocationError('INVALID_FIELD', '(body): not valid JSON');
  }
  return requestFromWire(decodeRequest(jsonToBinary(json, RequestType)), DECODE);
}

/** Inputs judged so far in this process, by verdict (for the reliability table). */
export const judged = { ok: 0, invalid: 0 };

/**
 * Runs `fn`; returns 'ok' or 'invalid', throws (a defect) for anything else. The time bound
 * catches a hang or a blow-up on inputs of a few KB (a linear decode takes well under 1 ms),
 * with room for GC pauses on a loaded 2-core machine (250 ms was exceeded there: 374 ms).
 */
export function judge(fn: () => unknown, maxMs = 5_000): 'ok' | 'invalid' {
  const t0 = performance.now();
  let verdict: 'ok' | 'invalid';
  try {
    fn();
    verdict = 'ok';
  } catch (err) {
    if (!(err instanceof AllocationError)) throw new Error(`decode threw ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    if (err.reason !== 'INVALID_FIELD') throw new Error(`decode refused with ${err.reason}, not INVALID_FIELD: ${err.message}`);
    if (!FIELD_PATH.test(err.message)) throw new Error(`message does not start with a field path: ${err.message.slice(0, 200)}`);
    verdict = 'invalid';
  }
  judged[verdict]++;
  const ms = performance.now() - t0;
  if (ms > maxMs) throw new Error(`decode took ${ms.toFixed(0)} ms (bound ${maxMs} ms)`);
  return verdict;
}
