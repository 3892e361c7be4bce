// Bounded decoding of AllocationRequest bytes (the gRPC door). A cheap schema-driven pre-scan
// counts the entries of every repeated and map field and checks the framing before the full
// decode, so malformed bytes become INVALID_FIELD (not INTERNAL) and a 4 MiB message of two
// million empty selectors is refused in milliseconds instead of blocking the event loop.
import protobuf from 'protobufjs';
import { AllocationError } from '../allocation/errors.ts';
import { LIMITS } from '../allocation/limits.ts';
import type { WireAllocationRequest } from '../allocation/wire.ts';
import { allocateMethod, RequestType } from './proto.ts';

/** Most entries a repeated or map field may carry; from-proto applies the finer per-field rules. */
export function entryLimit(field: protobuf.Field): number {
  if (field.map) return LIMITS.maxMapEntries;
  switch (field.name) {
    case 'gameServerSelectors':
    case 'preferredGameServerSelectors':
      return LIMITS.maxSelectors;
    case 'priorities':
      return LIMITS.maxPriorities;
    case 'namespaces': // GetCapacityRequest
      return LIMITS.maxCapacityNamespaces;
    default:
      return LIMITS.maxListValues;
  }
}

/** The INVALID_FIELD error for a field with too many entries. */
export function tooManyEntries(path: string, limit: number, got: string): AllocationError {
  return new AllocationError('INVALID_FIELD', `${path}: at most ${limit} entries allowed, got ${got}`, { metadata: { field: path } });
}

function malformed(detail: string, what = 'AllocationRequest'): AllocationError {
  return new AllocationError('INVALID_FIELD', `(message): not a valid ${what}: ${detail}`, { metadata: { field: '(message)' } });
}

/** Nesting the schema can reach; deeper means the bytes lie about their types. */
const MAX_DEPTH = 8;

function scan(r: protobuf.Reader, end: number, type: protobuf.Type, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw malformed(`${path || '(root)'} nested too deeply`);
  const counts = new Map<number, number>();
  while (r.pos < end) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wireType = tag & 7;
    if (id === 0 || wireType === 6 || wireType === 7) throw malformed(`bad tag ${tag} at byte ${r.pos}`);
    const field = type.fieldsById[id];
    const at = field ? (path ? `${path}.${field.name}` : field.name) : '';
    if (field && (field.repeated || field.map)) {
      const n = (counts.get(id) ?? 0) + 1;
      counts.set(id, n);
      const limit = entryLimit(field);
      if (n > limit) throw tooManyEntries(at, limit, `more than ${limit}`);
    }
    const nested = field && !field.map && field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    if (nested && wireType === 2) {
      const len = r.uint32();
      const sub = r.pos + len;
      if (sub > end) throw malformed(`${at} runs past the end of its message`);
      scan(r, sub, nested, field!.repeated ? `${at}[${(counts.get(id) ?? 1) - 1}]` : at, depth + 1);
      r.pos = sub;
    } else {
      r.skipType(wireType);
      if (r.pos > end) throw malformed(`${at || `field ${id}`} runs past the end of its message`);
    }
  }
}

/**
 * A bounded decoder for messages of `type`: the pre-scan first, then `deserialize` (grpc-js'
 * own). Throws AllocationError(INVALID_FIELD) for malformed or oversized content.
 */
export function boundedDecoder<T>(type: protobuf.Type, deserialize: (bytes: Buffer) => unknown): (bytes: Uint8Array) => T {
  return (bytes) => {
    try {
      scan(protobuf.Reader.create(bytes), bytes.length, type, '', 0);
    } catch (err) {
      if (err instanceof AllocationError) throw err;
      throw malformed((err as Error).message, type.name);
    }
    try {
      return deserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) as T;
    } catch (err) {
      throw malformed((err as Error).message, type.name);
    }
  };
}

/** Decodes AllocationRequest bytes; throws AllocationError(INVALID_FIELD) for malformed or oversized content. */
export const decodeRequest: (bytes: Uint8Array) => WireAllocationRequest = boundedDecoder(RequestType, allocateMethod.requestDeserialize);
