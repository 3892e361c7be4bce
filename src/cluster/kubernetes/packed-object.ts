// Compact storage of the stored GameServer objects that update() writes back from.
// - managedFields are dropped (the API server keeps them when an update omits them);
// - what the domain GameServer already holds (name, namespace, resourceVersion, uid, labels,
//   annotations, the status fields it reads) is not stored twice: unpack() takes it from the
//   cached GameServer;
// - what a fleet's GameServers have in common (apiVersion, kind, ownerReferences, finalizers,
//   spec minus its per-server ports, i.e. the pod template) is held once, reference-counted.
import type { GameServer } from '../../allocation/types.ts';
import { parseExact, stringifyExact } from '../../allocation/exact-json.ts';
import type { GameServerObject, GameServerObjectStatus, ObjectMeta } from './game-server-object.ts';

/** One stored object, packed. */
export interface PackedObject {
  /** Interned JSON of the parts GameServers usually share. */
  readonly shared: string;
  /** JSON of this object's own remaining parts. */
  readonly own: string;
}

interface Shared {
  apiVersion?: string;
  kind?: string;
  ownerReferences?: unknown;
  finalizers?: unknown;
  spec?: Record<string, unknown>;
}

interface Own {
  /** Unknown top-level fields. */
  o?: Record<string, unknown>;
  /** metadata minus what the domain holds, ownerReferences, finalizers, managedFields. */
  m: ObjectMeta;
  /** spec.ports. */
  p?: unknown;
  /** status minus the fields the domain holds (undefined = no status). */
  s?: Record<string, unknown>;
  /** status.players minus count and capacity (e.g. ids). */
  pl?: Record<string, unknown>;
}

/** metadata strings the domain GameServer holds as they are. */
const DOMAIN_META = ['name', 'namespace', 'resourceVersion', 'uid'] as const;

/** Packs objects, interning their shared parts with reference counts. */
export class ObjectPacker {
  readonly #shared = new Map<string, { readonly json: string; refs: number }>();

  /** Distinct shared parts held (for tests and metrics). */
  get sharedParts(): number {
    return this.#shared.size;
  }

  pack(obj: GameServerObject): PackedObject {
    const { apiVersion, kind, metadata, spec, status, ...others } = obj;
    const { managedFields: _m, labels: _l, annotations: _a, ownerReferences, finalizers, ...meta } = metadata;
    for (const k of DOMAIN_META) if (typeof meta[k] === 'string') delete meta[k];
    const shared: Shared = { apiVersion, kind, ownerReferences, finalizers };
    const own: Own = { m: meta };
    if (Object.keys(others).length > 0) own.o = others;
    if (spec !== undefined && spec !== null && typeof spec === 'object') {
      const { ports, ...rest } = spec;
      shared.spec = rest;
      if (ports !== undefined) own.p = ports;
    }
    if (status !== undefined && status !== null) {
      const { state: _s, address: _ad, addresses: _as, ports: _p, nodeName: _n, counters: _c, lists: _li, players, ...rest } =
        status as GameServerObjectStatus;
      own.s = rest;
      if (players !== undefined && players !== null) {
        const { count: _pc, capacity: _pk, ...playersRest } = players;
        own.pl = playersRest;
      }
    }
    return { shared: this.#intern(stringifyExact(shared)), own: stringifyExact(own) };
  }

  /** A fresh, mutable copy of the stored object; `gs` is the GameServer cached with it. */
  unpack(p: PackedObject, gs: GameServer): GameServerObject {
    const shared = parseExact(p.shared) as Shared;
    const own = parseExact(p.own) as Own;
    const metadata: ObjectMeta = own.m;
    metadata.name = gs.name;
    metadata.namespace = gs.namespace;
    metadata.resourceVersion = gs.resourceVersion;
    if (gs.uid !== undefined) metadata['uid'] = gs.uid;
    if (Object.keys(gs.labels).length > 0) metadata.labels = { ...gs.labels };
    if (Object.keys(gs.annotations).length > 0) metadata.annotations = { ...gs.annotations };
    if (shared.ownerReferences !== undefined) metadata['ownerReferences'] = shared.ownerReferences;
    if (shared.finalizers !== undefined) metadata['finalizers'] = shared.finalizers;
    const obj: GameServerObject = { ...own.o, metadata };
    if (shared.apiVersion !== undefined) obj.apiVersion = shared.apiVersion;
    if (shared.kind !== undefined) obj.kind = shared.kind;
    if (shared.spec !== undefined) obj.spec = own.p === undefined ? shared.spec : { ...shared.spec, ports: own.p };
    if (own.s !== undefined) {
      const status: GameServerObjectStatus = own.s;
      if (gs.state !== '') status.state = gs.state;
      if (gs.address !== '') status.address = gs.address;
      if (gs.addresses.length > 0) status.addresses = gs.addresses.map((a) => ({ type: a.type, address: a.address }));
      if (gs.ports.length > 0) status.ports = gs.ports.map((x) => ({ name: x.name, port: x.port }));
      if (gs.nodeName !== '') status.nodeName = gs.nodeName;
      if (Object.keys(gs.counters).length > 0) status.counters = Object.fromEntries(Object.entries(gs.counters).map(([k, c]) => [k, { count: c.count, capacity: c.capacity }]));
      if (Object.keys(gs.lists).length > 0) status.lists = Object.fromEntries(Object.entries(gs.lists).map(([k, l]) => [k, { capacity: l.capacity, values: [...l.values] }]));
      if (gs.players !== null) status.players = { ...own.pl, count: gs.players.count, capacity: gs.players.capacity };
      obj.status = status;
    }
    return obj;
  }

  /** Call once when a packed object is dropped or replaced. */
  release(p: PackedObject): void {
    const e = this.#shared.get(p.shared);
    if (e !== undefined && --e.refs === 0) this.#shared.delete(p.shared);
  }

  #intern(json: string): string {
    const e = this.#shared.get(json);
    if (e !== undefined) {
      e.refs++;
      return e.json;
    }
    this.#shared.set(json, { json, refs: 1 });
    return json;
  }
}
