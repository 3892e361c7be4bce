// GameServer object <-> domain conversion, resourceVersion ordering, the write rate limiter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareResourceVersions,
  toGameServer,
  toGameServerObject,
  type GameServerObject,
} from '../../src/cluster/kubernetes/game-server-object.ts';
import { parseExact, stringifyExact } from '../../src/allocation/exact-json.ts';
import { ObjectPacker } from '../../src/cluster/kubernetes/packed-object.ts';
import { TokenBucket } from '../../src/cluster/kubernetes/token-bucket.ts';
import { Interner } from '../../src/cluster/kubernetes/interner.ts';

const stored = (): GameServerObject => ({
  apiVersion: 'agones.dev/v1',
  kind: 'GameServer',
  metadata: {
    name: 'gs-1',
    namespace: 'ns',
    uid: 'u-1',
    resourceVersion: '41',
    generation: 1,
    labels: { 'agones.dev/fleet': 'f' },
    annotations: { a: 'b' },
    ownerReferences: [{ kind: 'GameServerSet', name: 'set' }],
    managedFields: [{ manager: 'agones', operation: 'Update' }],
  },
  spec: { container: 'game', ports: [{ name: 'default', containerPort: 7654 }], template: { spec: { containers: [] } } },
  status: {
    state: 'Ready',
    address: '10.0.0.1',
    addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
    ports: [{ name: 'default', port: 7001 }],
    nodeName: 'node-1',
    reservedUntil: null,
    players: { count: 1, capacity: 4, ids: ['p1'] },
    counters: { rooms: { count: 1, capacity: 5 } },
    lists: { players: { capacity: 4, values: ['p1'] } },
    eviction: { safe: 'Never' },
  },
});

test('toGameServer reads every field the gateway uses', () => {
  const gs = toGameServer(stored());
  assert.deepEqual(gs, {
    namespace: 'ns',
    name: 'gs-1',
    resourceVersion: '41',
    uid: 'u-1',
    labels: { 'agones.dev/fleet': 'f' },
    annotations: { a: 'b' },
    state: 'Ready',
    address: '10.0.0.1',
    addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
    ports: [{ name: 'default', port: 7001 }],
    nodeName: 'node-1',
    counters: { rooms: { count: 1, capacity: 5 } },
    lists: { players: { capacity: 4, values: ['p1'] } },
    players: { count: 1, capacity: 4 },
    deleting: false,
  });
  assert.ok(Object.isFrozen(gs));
});

test('toGameServer tolerates a bare object and flags deletion', () => {
  const gs = toGameServer({ metadata: { name: 'x', namespace: 'n', resourceVersion: '1', deletionTimestamp: '2026-01-01T00:00:00Z' } });
  assert.equal(gs.state, '');
  assert.deepEqual([gs.labels, gs.annotations, gs.counters, gs.lists], [{}, {}, {}, {}]);
  assert.deepEqual([gs.addresses, gs.ports], [[], []]);
  assert.equal(gs.players, null);
  assert.equal(gs.deleting, true);
});

test('toGameServerObject lays the domain over the stored object and keeps the rest', () => {
  const base = stored();
  const before = structuredClone(base);
  const gs = toGameServer(base);
  const obj = toGameServerObject(
    {
      ...gs,
      state: 'Allocated',
      labels: { ...gs.labels, x: 'y' },
      annotations: {},
      counters: { rooms: { count: 2, capacity: 5 }, extra: { count: 0, capacity: 1 } },
      lists: { players: { capacity: 4, values: ['p1', 'p2'] } },
      players: { count: 2, capacity: 4 },
    },
    base,
  );
  assert.deepEqual(base, before, 'base untouched');
  assert.equal(obj.metadata.resourceVersion, '41');
  assert.equal(obj.metadata.managedFields, undefined, 'managedFields omitted (kept by the API server)');
  assert.equal(obj.metadata['uid'], 'u-1');
  assert.deepEqual(obj.metadata['ownerReferences'], before.metadata['ownerReferences']);
  assert.deepEqual(obj.metadata.labels, { 'agones.dev/fleet': 'f', x: 'y' });
  assert.deepEqual(obj.metadata.annotations, {}, 'removed annotations are removed');
  assert.deepEqual(obj.spec, before.spec);
  assert.equal(obj.status?.state, 'Allocated');
  assert.deepEqual(obj.status?.players, { count: 2, capacity: 4, ids: ['p1'] });
  assert.deepEqual(obj.status?.counters, { rooms: { count: 2, capacity: 5 }, extra: { count: 0, capacity: 1 } });
  assert.deepEqual(obj.status?.lists, { players: { capacity: 4, values: ['p1', 'p2'] } });
  assert.equal(obj.status?.['reservedUntil'], null);
  assert.deepEqual(obj.status?.['eviction'], { safe: 'Never' });
  assert.deepEqual(toGameServer({ ...obj, metadata: { ...obj.metadata } }), {
    ...toGameServer(obj),
  });
});

test('a round trip without changes reproduces the stored object (minus managedFields)', () => {
  const base = stored();
  const obj = toGameServerObject(toGameServer(base), base);
  const expected = structuredClone(base);
  delete expected.metadata.managedFields;
  assert.deepEqual(obj, expected);
});

test('toGameServerObject adds no empty fields the stored object lacked', () => {
  const base: GameServerObject = { apiVersion: 'agones.dev/v1', kind: 'GameServer', metadata: { name: 'b', namespace: 'n', resourceVersion: '7' }, status: { state: 'Ready' } };
  const obj = toGameServerObject({ ...toGameServer(base), state: 'Allocated' }, base);
  assert.deepEqual(obj, { ...base, status: { state: 'Allocated' } });
});

test('compareResourceVersions orders decimal versions numerically, refuses to guess otherwise', () => {
  assert.equal(compareResourceVersions('9', '10'), -1);
  assert.equal(compareResourceVersions('100', '99'), 1);
  assert.equal(compareResourceVersions('123', '124'), -1);
  assert.equal(compareResourceVersions('5', '5'), 0);
  assert.equal(compareResourceVersions('abc', 'abc'), 0);
  assert.equal(compareResourceVersions('abc', '5'), undefined);
  assert.equal(compareResourceVersions('', '5'), undefined);
  assert.equal(compareResourceVersions('18446744073709551615', '18446744073709551614'), 1);
});

test('TokenBucket: burst at once, then one token per 1/qps, in call order', () => {
  let now = 0;
  const b = new TokenBucket(10, 2, () => now);
  assert.deepEqual([b.reserve(), b.reserve()], [0, 0]);
  assert.equal(b.reserve(), 100);
  assert.equal(b.reserve(), 200);
  now = 1_000;
  assert.equal(b.reserve(), 0, 'refilled (capped at burst)');
  assert.equal(b.reserve(), 0);
  assert.equal(b.reserve(), 100);
  b.cancel();
  assert.equal(b.reserve(), 100, 'a cancelled reservation is given back');
  assert.equal(new TokenBucket(0, 0).reserve(), 0, 'qps 0 = unlimited');
});

test('TokenBucket.take rejects with the signal reason and returns the token', async () => {
  const b = new TokenBucket(1, 1);
  await b.take();
  const ac = new AbortController();
  const waiting = b.take(ac.signal);
  const reason = new Error('gone');
  ac.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  await assert.rejects(b.take(AbortSignal.abort(reason)), (e) => e === reason);
});

test('ObjectPacker: round trip without managedFields; what a fleet shares is held once', () => {
  const packer = new ObjectPacker();
  const a = stored();
  const b = structuredClone(a);
  b.metadata.name = 'gs-2';
  b.metadata.uid = 'u-2';
  b.metadata.labels = { other: 'label' };
  (b.spec as { ports: { hostPort?: number }[] }).ports[0]!.hostPort = 7002;
  b.status = { ...b.status, state: 'Allocated', counters: { rooms: { count: 3, capacity: 5 } } };
  b['extraTopLevel'] = { kept: true };
  const pa = packer.pack(a);
  const pb = packer.pack(b);
  assert.equal(packer.sharedParts, 1);
  assert.equal(pa.shared, pb.shared);
  for (const [obj, packed] of [[a, pa], [b, pb]] as const) {
    const expected = structuredClone(obj);
    delete expected.metadata.managedFields;
    assert.deepEqual(packer.unpack(packed, toGameServer(obj)), expected);
  }
  assert.notEqual(packer.unpack(pb, toGameServer(b)), packer.unpack(pb, toGameServer(b)), 'each unpack is a fresh copy');
  assert.ok(a.metadata.managedFields !== undefined, 'pack does not modify its input');
  assert.ok(!pb.own.includes('Allocated') && !pb.own.includes('other'), 'domain-held fields are not stored twice');
  const other = structuredClone(a);
  other.spec = { container: 'other' };
  const po = packer.pack(other);
  assert.equal(packer.sharedParts, 2);
  packer.release(pa);
  assert.equal(packer.sharedParts, 2);
  packer.release(pb);
  packer.release(po);
  assert.equal(packer.sharedParts, 0);
  const bare: GameServerObject = { metadata: { name: 'x', namespace: 'n', resourceVersion: '3' } };
  assert.deepEqual(packer.unpack(packer.pack(bare), toGameServer(bare)), bare);
});

test('map keys that are JavaScript object properties ("__proto__", "constructor") are ordinary keys both ways', () => {
  const obj = JSON.parse(`{"apiVersion":"agones.dev/v1","kind":"GameServer","metadata":{"name":"g","namespace":"ns","resourceVersion":"7",
    "labels":{"constructor":"x"},"annotations":{"toString":"y"}},
    "status":{"state":"Ready","counters":{"__proto__":{"count":1,"capacity":2},"valueOf":{"count":0,"capacity":1}},
    "lists":{"__proto__":{"capacity":3,"values":["a"]}}}}`) as GameServerObject;
  const packer = new ObjectPacker();
  const gs = toGameServer(obj);
  assert.deepEqual(Object.keys(gs.counters), ['__proto__', 'valueOf']);
  assert.deepEqual(Object.getOwnPropertyDescriptor(gs.counters, '__proto__')?.value, { count: 1, capacity: 2 });
  assert.deepEqual(Object.keys(gs.lists), ['__proto__']);
  assert.equal(Object.getPrototypeOf(gs.counters), Object.prototype);
  const back = toGameServerObject(gs, packer.unpack(packer.pack(obj), gs));
  assert.equal(
    JSON.stringify(back.status?.counters),
    '{"__proto__":{"count":1,"capacity":2},"valueOf":{"count":0,"capacity":1}}',
  );
  assert.equal(JSON.stringify(back.status?.lists), '{"__proto__":{"capacity":3,"values":["a"]}}');
  assert.equal(JSON.stringify(back.metadata.labels), '{"constructor":"x"}');
});

test('int64 beyond 2^53 is read exactly from the API server\'s JSON and written back digit for digit, changed or not', () => {
  const text = `{"apiVersion":"agones.dev/v1","kind":"GameServer","metadata":{"name":"g","namespace":"ns","resourceVersion":"7"},
    "spec":{"future":{"big":12345678901234567891}},
    "status":{"state":"Ready","counters":{"a":{"count":9007199254740993,"capacity":9223372036854775807},"b":{"count":1,"capacity":2}},
    "players":{"count":9007199254740995,"capacity":9223372036854775807,"ids":[]}}}`;
  const obj = parseExact(text) as GameServerObject;
  const gs = toGameServer(obj);
  assert.equal(gs.counters['a']?.count, 9007199254740993n);
  assert.equal(gs.counters['b']?.count, 1); // safe values stay numbers
  const packer = new ObjectPacker();
  const back = stringifyExact(toGameServerObject({ ...gs, counters: { ...gs.counters, b: { count: 2, capacity: 2 } } }, packer.unpack(packer.pack(obj), gs)));
  assert.match(back, /"a":\{"count":9007199254740993,"capacity":9223372036854775807\}/);
  assert.match(back, /"b":\{"count":2,"capacity":2\}/);
  assert.match(back, /"big":12345678901234567891/);
  assert.match(back, /"players":\{"ids":\[\],"count":9007199254740995,"capacity":9223372036854775807\}/);
});

test('Interner: equal values are held once and frozen; the table is bounded and long texts are not held', () => {
  const interner = new Interner(2);
  const a = interner.value('k1', () => ({ x: 1 }));
  assert.equal(interner.value('k1', () => ({ x: 2 })), a, 'an equal key returns the value already held');
  assert.ok(Object.isFrozen(a));
  interner.value('k2', () => ({}));
  interner.value('k3', () => ({})); // past the limit: the table starts over
  assert.notEqual(interner.value('k1', () => ({ x: 1 })), a, 'k1 was forgotten when the table started over');
  const long = 'x'.repeat(1_025);
  const first = interner.value(long, () => ({}));
  assert.notEqual(interner.value(long, () => ({})), first, 'a text over 1 KiB is not held');
  assert.ok(Object.isFrozen(first));
});

test('toGameServer shares equal label sets and counters between GameServers, frozen', () => {
  const a = toGameServer(stored());
  const other = stored();
  other.metadata.name = 'gs-2';
  const b = toGameServer(other);
  assert.equal(a.labels, b.labels);
  assert.equal(a.counters, b.counters);
  assert.ok(Object.isFrozen(a.labels) && Object.isFrozen(a.counters['rooms']) && Object.isFrozen(a.addresses));
  other.metadata.labels = { 'agones.dev/fleet': 'g' };
  assert.notEqual(toGameServer(other).labels, a.labels);
  assert.deepEqual(toGameServer(other).labels, { 'agones.dev/fleet': 'g' });
});
