// Conversion between the agones.dev/v1 GameServer object and the domain GameServer, both ways.
// Writing back starts from the stored object, so spec and unknown fields survive a round trip.
import { int64, type Int64 } from '../../allocation/int64.ts';
import { stringifyExact } from '../../allocation/exact-json.ts';
import { setOwn } from '../../allocation/records.ts';
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

export const GAME_SERVER_API_VERSION = 'agones.dev/v1';

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

/**
 * The object to PUT for `gs`: `base` (the stored object) with the domain's labels, annotations
 * and status fields laid over it and `gs.resourceVersion` as the precondition. `base` is not modified.
 */
export function toGameServerObject(gs: GameServer, base: GameServerObject): GameServerObject {
  const metadata: ObjectMeta = { ...base.metadata, resourceVersion: gs.resourceVersion };
  delete metadata.managedFields; // omitted = kept as stored by the API server
  setMap(metadata, 'labels', gs.labels);
  setMap(metadata, 'annotations', gs.annotations);

  const status: GameServerObjectStatus = { ...(base.status ?? {}) };
  status.state = gs.state;
  setString(status, 'address', gs.address);
  setString(status, 'nodeName', gs.nodeName);
  if (gs.addresses.length > 0 || status.addresses != null) status.addresses = gs.addresses.map((a) => ({ type: a.type, address: a.address }));
  if (gs.ports.length > 0 || status.ports != null) status.ports = gs.ports.map((p) => ({ name: p.name, port: p.port }));
  if (Object.keys(gs.counters).length > 0 || status.counters != null) {
    status.counters = Object.fromEntries(Object.entries(gs.counters).map(([k, c]) => [k, { count: c.count, capacity: c.capacity }]));
  }
  if (Object.keys(gs.lists).length > 0 || status.lists != null) {
    status.lists = Object.fromEntries(Object.entries(gs.lists).map(([k, l]) => [k, { capacity: l.capacity, values: [...l.values] }]));
  }
  if (gs.players === null) delete status.players;
  else status.players = { ...(status.players ?? {}), count: gs.players.count, capacity: gs.players.capacity }; // keeps ids

  return { ...base, apiVersion: base.apiVersion ?? GAME_SERVER_API_VERSION, kind: base.kind ?? 'GameServer', metadata, status };
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

function setMap(meta: ObjectMeta, key: 'labels' | 'annotations', value: Readonly<Record<string, string>>): void {
  if (Object.keys(value).length > 0 || meta[key] !== undefined) meta[key] = { ...value };
}

function setString(status: GameServerObjectStatus, key: 'address' | 'nodeName', value: string): void {
  if (value !== '' || status[key] !== undefined) status[key] = value;
}
