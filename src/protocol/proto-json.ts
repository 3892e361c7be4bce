// The proto3 JSON mapping for the REST form, driven by the proto's reflection types so it
// follows the contract field by field. Input is checked strictly by type and reported by path;
// output emits every field (as agones-allocator's grpc-gateway does) with int64 as strings.
import protobuf from 'protobufjs';
import { AllocationError, echo, keyPath } from '../allocation/errors.ts';
import { setOwn } from '../allocation/records.ts';
import { entryLimit, tooManyEntries } from './request-decoder.ts';

const WRAPPERS = new Set([
  'google.protobuf.Int64Value', 'google.protobuf.UInt64Value', 'google.protobuf.Int32Value', 'google.protobuf.UInt32Value',
  'google.protobuf.StringValue', 'google.protobuf.BoolValue', 'google.protobuf.DoubleValue', 'google.protobuf.FloatValue',
  'google.protobuf.BytesValue',
]);
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
/** Deeper nesting than the schema allows is refused before it is walked. */
const MAX_DEPTH = 32;

function bad(path: string, detail: string): never {
  throw new AllocationError('INVALID_FIELD', `${path || '(body)'}: ${detail}`, { metadata: { field: path || '(body)' } });
}

function integer(v: unknown, path: string, type: string): string | number {
  const unsigned = type.startsWith('u') || type === 'fixed32' || type === 'fixed64';
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    if (unsigned && v < 0) bad(path, 'must not be negative');
    if (INT32.has(type) && (v > 0xffffffff || v < -0x80000000)) bad(path, 'out of range for a 32-bit integer');
    return v;
  }
  // A JSON number beyond 2^53 arrives as bigint when written as plain digits (parseExact), exact;
  // otherwise (1e19) it stands for the double's exact value. Both go on as decimal strings.
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) v = BigInt(v).toString();
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    if (unsigned && v.startsWith('-')) bad(path, 'must not be negative');
    const big = BigInt(v);
    const [lo, hi] = unsigned ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
    if (big < lo || big > hi) bad(path, `out of range for ${type}`);
    return INT32.has(type) ? Number(v) : v;
  }
  return bad(path, `must be an integer (a number or a decimal string), got ${echo(v)}`);
}

function scalar(v: unknown, type: string, path: string): unknown {
  if (type === 'string') return typeof v === 'string' ? v : bad(path, `must be a string, got ${typeof v}`);
  if (type === 'bool') return typeof v === 'boolean' ? v : bad(path, `must be true or false, got ${echo(v)}`);
  if (INT64.has(type) || INT32.has(type)) return integer(v, path, type);
  if (type === 'double' || type === 'float') return typeof v === 'number' ? v : bad(path, 'must be a number');
  if (type === 'bytes') return typeof v === 'string' ? v : bad(path, 'must be a base64 string');
  return bad(path, `unsupported type ${type}`);
}

function enumValue(v: unknown, e: protobuf.Enum, path: string): number {
  if (typeof v === 'string' && Object.hasOwn(e.values, v)) return e.values[v]!;
  if (typeof v === 'number' && Number.isInteger(v) && Object.values(e.values).includes(v)) return v;
  return bad(path, `must be one of ${Object.keys(e.values).map((k) => JSON.stringify(k)).join(', ')}, got ${echo(v)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function value(v: unknown, field: protobuf.Field, path: string, depth: number): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return enumValue(v, t, path);
  if (t instanceof protobuf.Type) {
    if (WRAPPERS.has(t.fullName.slice(1))) return { value: scalar(v, t.fields.value!.type, path) };
    return message(v, t, path, depth + 1);
  }
  return scalar(v, field.type, path);
}

function message(json: unknown, type: protobuf.Type, path: string, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) bad(path, 'nested too deeply');
  if (!isObject(json)) return bad(path, `must be a JSON object, got ${Array.isArray(json) ? 'an array' : echo(json)}`);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    // Both the proto name and its JSON name are accepted; here they are the same camelCase.
    const raw = Object.hasOwn(json, field.name) ? json[field.name] : json[field.options?.json_name ?? field.name];
    if (raw === undefined || raw === null) continue;
    const at = path ? `${path}.${field.name}` : field.name;
    if (field.map) {
      if (!isObject(raw)) bad(at, 'must be a JSON object (a map)');
      const m: Record<string, unknown> = {};
      const entries = Object.entries(raw);
      // Counted before walking: a huge map is refused without converting every entry.
      if (entries.length > entryLimit(field)) throw tooManyEntries(at, entryLimit(field), String(entries.length));
      for (const [k, v] of entries) {
        if (v === null) bad(keyPath(at, k), 'must not be null');
        setOwn(m, k, value(v, field, keyPath(at, k), depth));
      }
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(raw)) bad(at, 'must be a JSON array');
      if (raw.length > entryLimit(field)) throw tooManyEntries(at, entryLimit(field), String(raw.length));
      out[field.name] = raw.map((v, i) => value(v, field, `${at}[${i}]`, depth));
    } else {
      out[field.name] = value(raw, field, at, depth);
    }
  }
  return out; // unknown fields are ignored, as agones-allocator does
}

/** proto3 JSON → binary message of `type`, rejecting ill-typed fields by path. */
export function jsonToBinary(json: unknown, type: protobuf.Type): Uint8Array {
  const obj = message(json, type, '', 0);
  return type.encode(type.fromObject(obj)).finish();
}

function emit(v: unknown, field: protobuf.Field): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return typeof v === 'number' ? (t.valuesById[v] ?? v) : v;
  if (t instanceof protobuf.Type) {
    if (WRAPPERS.has(t.fullName.slice(1))) {
      const inner = (v as { value?: unknown } | null)?.value;
      return inner === undefined || inner === null ? null : INT64.has(t.fields.value!.type) ? String(inner) : inner;
    }
    return toJson(v as Record<string, unknown>, t);
  }
  if (INT64.has(field.type)) return String(v ?? '0');
  return v;
}

function zero(field: protobuf.Field): unknown {
  if (field.map) return {};
  if (field.repeated) return [];
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return t.valuesById[0];
  if (t instanceof protobuf.Type) return null;
  if (field.type === 'string' || field.type === 'bytes') return '';
  if (field.type === 'bool') return false;
  return INT64.has(field.type) ? '0' : 0;
}

/** A decoded message (proto-loader shape) → proto3 JSON with every field present. */
export function toJson(obj: Record<string, unknown> | null | undefined, type: protobuf.Type): Record<string, unknown> | null {
  if (obj === null || obj === undefined) return null;
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (v === undefined || v === null) out[field.name] = zero(field);
    else if (field.map) out[field.name] = Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, emit(x, field)]));
    else if (field.repeated) out[field.name] = (v as unknown[]).map((x) => emit(x, field));
    else out[field.name] = emit(v, field);
  }
  return out;
}
