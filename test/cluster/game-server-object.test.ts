// GameServer object <-> domain conversion, resourceVersion ordering, the write rate limiter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareResourceVersions, toGameServer, toMergePatch, type GameServerObject } from '../../src/cluster/kubernetes/game-server-object.ts';
import { parseExact, stringifyExact } from '../../src/allocation/exact-json.ts';
import { TokenBucket } from '../../src/cluster/kubernetes/token-bucket.ts';

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

test('toMergePatch carries what the domain changed, nulls what it removed, and the resourceVersion precondition', () => {
  const gs = toGameServer(stored());
  const patch = toMergePatch(gs, {
    ...gs,
    state: 'Allocated',
    labels: { ...gs.labels, x: 'y' },
    annotations: {},
    counters: { rooms: { count: 2, capacity: 5 }, extra: { count: 0, capacity: 1 } },
    lists: { players: { capacity: 4, values: ['p1', 'p2'] } },
    players: { count: 2, capacity: 4 },
  });
  assert.deepEqual(patch, {
    metadata: { resourceVersion: '41', labels: { x: 'y' }, annotations: { a: null } },
    status: {
      state: 'Allocated',
      counters: { rooms: { count: 2, capacity: 5 }, extra: { count: 0, capacity: 1 } },
      lists: { players: { capacity: 4, values: ['p1', 'p2'] } },
      players: { count: 2, capacity: 4 }, // merged into the stored players: ids are kept
    },
  });
  assert.deepEqual(toMergePatch(gs, gs), { metadata: { resourceVersion: '41' } }, 'no change: only the precondition');
  const moved = toMergePatch(gs, { ...gs, address: '', addresses: [], ports: [{ name: 'default', port: 7002 }], players: null });
  assert.deepEqual(moved.status, { address: null, addresses: [], ports: [{ name: 'default', port: 7002 }], players: null });
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

test('map keys that are JavaScript object properties ("__proto__", "constructor") are ordinary keys both ways', () => {
  const obj = JSON.parse(`{"apiVersion":"agones.dev/v1","kind":"GameServer","metadata":{"name":"g","namespace":"ns","resourceVersion":"7",
    "labels":{"constructor":"x"},"annotations":{"toString":"y"}},
    "status":{"state":"Ready","counters":{"__proto__":{"count":1,"capacity":2},"valueOf":{"count":0,"capacity":1}},
    "lists":{"__proto__":{"capacity":3,"values":["a"]}}}}`) as GameServerObject;
  const gs = toGameServer(obj);
  assert.deepEqual(Object.keys(gs.counters), ['__proto__', 'valueOf']);
  assert.deepEqual(Object.getOwnPropertyDescriptor(gs.counters, '__proto__')?.value, { count: 1, capacity: 2 });
  assert.deepEqual(Object.keys(gs.lists), ['__proto__']);
  assert.equal(Object.getPrototypeOf(gs.counters), Object.prototype);
  const patch = toMergePatch(
    toGameServer({ metadata: { name: 'g', namespace: 'ns', resourceVersion: '7', labels: { toString: 'z' } } }),
    { ...gs, resourceVersion: '7' },
  );
  assert.equal(
    JSON.stringify(patch.status?.['counters']),
    '{"__proto__":{"count":1,"capacity":2},"valueOf":{"count":0,"capacity":1}}',
  );
  assert.equal(JSON.stringify(patch.status?.['lists']), '{"__proto__":{"capacity":3,"values":["a"]}}');
  assert.equal(JSON.stringify(patch.metadata.labels), '{"constructor":"x","toString":null}');
  assert.equal(JSON.stringify(patch.metadata.annotations), '{"toString":"y"}');
  assert.equal(JSON.stringify(toMergePatch(gs, { ...gs, counters: {} }).status), '{"counters":{"__proto__":null,"valueOf":null}}');
});

test('int64 beyond 2^53 is read exactly from the API server\'s JSON and written digit for digit', () => {
  const text = `{"apiVersion":"agones.dev/v1","kind":"GameServer","metadata":{"name":"g","namespace":"ns","resourceVersion":"7"},
    "spec":{"future":{"big":12345678901234567891}},
    "status":{"state":"Ready","counters":{"a":{"count":9007199254740993,"capacity":9223372036854775807},"b":{"count":1,"capacity":2}},
    "players":{"count":9007199254740995,"capacity":9223372036854775807,"ids":[]}}}`;
  const obj = parseExact(text) as GameServerObject;
  const gs = toGameServer(obj);
  assert.equal(gs.counters['a']?.count, 9007199254740993n);
  assert.equal(gs.counters['b']?.count, 1); // safe values stay numbers
  const patch = stringifyExact(toMergePatch(gs, { ...gs, counters: { ...gs.counters, a: { count: 9007199254740995n, capacity: 9223372036854775807n }, b: { count: 2, capacity: 2 } }, players: { count: 9007199254740997n, capacity: 9223372036854775807n } }));
  assert.equal(patch, '{"metadata":{"resourceVersion":"7"},"status":{"counters":{"a":{"count":9007199254740995,"capacity":9223372036854775807},"b":{"count":2,"capacity":2}},"players":{"count":9007199254740997,"capacity":9223372036854775807}}}');
});
