// Conversion between the agones.dev/v1 GameServer object and the domain GameServer, both ways.
// Writing back is a merge patch of what the domain changed, so spec and unknown fields are never rewritten.
import { int64, type Int64 } from '../../allocation/int64.ts';
import { stringifyExact } from '../../allocation/exact-json.ts';
import { own, setOwn } from '../../allocation/records.ts';
import type {
  CounterStatus,
  GameServer,
  GameServerAddress,
  GameServerPort,
  ListStatus,
  PlayerStatus,
} from '../../allocation/types.ts';
import { Interner } from './interner.ts';

/** A GameServer as the API server serves it (only what we read is typed). */
export interface GameServerObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: GameServerObjectStatus;
  [field: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string | null;
  managedFields?: unknown;
  [field: string]: unknown;
}

export interface GameServerObjectStatus {
  state?: string;
  address?: string;
  addresses?: { type?: string; address?: string }[] | null;
  ports?: { name?: string; port?: number }[] | null;
  nodeName?: string;
  // int64 in the CRD: bigint beyond 2^53 (see exact-json.ts)
  players?: { count?: Int64; capacity?: Int64; [field: string]: unknown } | null;
  counters?: Record<string, { count?: Int64; capacity?: Int64 }> | null;
  lists?: Record<string, { capacity?: Int64; values?: string[] | null }> | null;
  [field: string]: unknown;
}

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});
const NONE: readonly never[] = Object.freeze([]);

/** What GameServers repeat, held once for every store of the process. */
const shared = new Interner();

/** The domain view of a stored GameServer object (immutable: what repeats is shared). */
export function toGameServer(obj: GameServerObject): GameServer {
  const m = obj.metadata;
  const s = obj.status ?? {};
  const address = s.address ?? '';
  const gs: GameServer = {
    namespace: shared.string(m.namespace ?? ''),
    name: m.name ?? '',
    resourceVersion: m.resourceVersion ?? '',
    labels: sharedRecord('l', m.labels, (v) => shared.string(v)),
    annotations: sharedRecord('a', m.annotations, (v) => v),
    state: shared.string(s.state ?? '') as GameServer['state'],
    address,
    addresses: s.addresses == null || s.addresses.length === 0 ? NONE : Object.freeze(s.addresses.map((a) => toAddress(a, address))),
    ports: s.ports == null || s.ports.length === 0 ? NONE : Object.freeze(s.ports.map(toPort)),
    nodeName: shared.string(s.nodeName ?? ''),
    counters: sharedRecord('c', s.counters, toCounter),
    lists: sharedRecord('L', s.lists, toList),
    players: s.players ? toPlayers(s.players) : null,
    deleting: m.deletionTimestamp !== undefined && m.deletionTimestamp !== null,
  };
  if (typeof m.uid === 'string') (gs as { uid?: string }).uid = m.uid;
  return Object.freeze(gs);
}

/** A frozen record equal to `m` mapped by `f`, the one already held when an equal one is. */
function sharedRecord<I, O>(kind: string, m: Readonly<Record<string, I>> | null | undefined, f: (v: I) => O): Readonly<Record<string, O>> {
  if (m == null) return EMPTY;
  const keys = Object.keys(m);
  if (keys.length === 0) return EMPTY;
  return shared.value(kind + stringifyExact(m), () => {
    const out: Record<string, O> = {};
    for (const k of keys) setOwn(out, shared.string(k), f(m[k] as I));
    return out;
  });
}

/** A JSON merge patch (RFC 7386) of a GameServer: null removes a key. */
export interface GameServerPatch {
  metadata: { resourceVersion: string; labels?: Record<string, string | null>; annotations?: Record<string, string | null> };
  status?: Record<string, unknown>;
}

/**
 * The JSON merge patch that takes the stored object from `from` (the cached version) to `to`: what
 * the domain changed, nothing else, and `metadata.resourceVersion` as the precondition, so that a
 * concurrent change fails with 409 instead of being overwritten. The API server applies it to the
 * stored object, so fields the gateway does not model are kept without the gateway holding them.
 */
export function toMergePatch(from: GameServer, to: GameServer): GameServerPatch {
  const patch: GameServerPatch = { metadata: { resourceVersion: to.resourceVersion } };
  const labels = mapPatch(from.labels, to.labels, (a, b) => a === b, (v) => v);
  if (labels !== undefined) patch.metadata.labels = labels;
  const annotations = mapPatch(from.annotations, to.annotations, (a, b) => a === b, (v) => v);
  if (annotations !== undefined) patch.metadata.annotations = annotations;

  const status: Record<string, unknown> = {};
  if (to.state !== from.state) status['state'] = to.state === '' ? null : to.state;
  if (to.address !== from.address) status['address'] = to.address === '' ? null : to.address;
  if (to.nodeName !== from.nodeName) status['nodeName'] = to.nodeName === '' ? null : to.nodeName;
  // lists are replaced whole by a merge patch
  if (!sameArray(from.addresses, to.addresses, (a, b) => a.type === b.type && a.address === b.address)) {
    status['addresses'] = to.addresses.map((a) => ({ type: a.type, address: a.address }));
  }
  if (!sameArray(from.ports, to.ports, (a, b) => a.name === b.name && a.port === b.port)) {
    status['ports'] = to.ports.map((p) => ({ name: p.name, port: p.port }));
  }
  const counters = mapPatch(from.counters, to.counters, (a, b) => a.count === b.count && a.capacity === b.capacity, (c) => ({ count: c.count, capacity: c.capacity }));
  if (counters !== undefined) status['counters'] = counters;
  const lists = mapPatch(
    from.lists,
    to.lists,
    (a, b) => a.capacity === b.capacity && sameArray(a.values, b.values, (x, y) => x === y),
    (l) => ({ capacity: l.capacity, values: [...l.values] }),
  );
  if (lists !== undefined) status['lists'] = lists;
  if (to.players === null) {
    if (from.players !== null) status['players'] = null;
  } else if (from.players === null || from.players.count !== to.players.count || from.players.capacity !== to.players.capacity) {
    status['players'] = { count: to.players.count, capacity: to.players.capacity }; // merged: ids are kept
  }
  if (Object.keys(status).length > 0) patch.status = status;
  return patch;
}

/**
 * Orders two resourceVersions: negative if a is older, 0 if equal, positive if newer, or
 * undefined when they cannot be compared (not both decimal integers and not equal).
 */
export function compareResourceVersions(a: string, b: string): number | undefined {
  if (a === b) return 0;
  if (!DECIMAL.test(a) || !DECIMAL.test(b)) return undefined;
  if (a.length !== b.length) return a.length - b.length; // no leading zeros: longer = larger
  return a < b ? -1 : 1;
}

const DECIMAL = /^[1-9][0-9]*$/;

function toAddress(a: { type?: string; address?: string }, primary: string): GameServerAddress {
  const address = a.address ?? '';
  return Object.freeze({ type: shared.string(a.type ?? ''), address: address === primary ? primary : address });
}

function toPort(p: { name?: string; port?: number }): GameServerPort {
  return Object.freeze({ name: shared.string(p.name ?? ''), port: p.port ?? 0 });
}

function toCounter(c: { count?: Int64; capacity?: Int64 }): CounterStatus {
  return Object.freeze({ count: int64(c.count ?? 0), capacity: int64(c.capacity ?? 0) });
}

function toList(l: { capacity?: Int64; values?: string[] | null }): ListStatus {
  return Object.freeze({ capacity: int64(l.capacity ?? 0), values: Object.freeze(l.values ?? []) });
}

function toPlayers(p: { count?: Int64; capacity?: Int64 }): PlayerStatus {
  return { count: int64(p.count ?? 0), capacity: int64(p.capacity ?? 0) };
}

/** The merge patch of a map: changed and added keys with their new value, removed ones null; undefined if equal. */
function mapPatch<T, P>(
  from: Readonly<Record<string, T>>,
  to: Readonly<Record<string, T>>,
  same: (a: T, b: T) => boolean,
  write: (v: T) => P,
): Record<string, P | null> | undefined {
  let out: Record<string, P | null> | undefined;
  for (const k of Object.keys(to)) {
    const before = own(from, k);
    if (before === undefined || !same(before, to[k] as T)) setOwn((out ??= {}), k, write(to[k] as T));
  }
  for (const k of Object.keys(from)) if (!Object.hasOwn(to, k)) setOwn((out ??= {}), k, null);
  return out;
}

function sameArray<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): boolean {
  return a.length === b.length && a.every((x, i) => same(x, b[i] as T));
}
