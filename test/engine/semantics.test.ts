// Agones' allocation semantics, one case per spec field, over real gRPC and REST with mTLS.
// Each case runs twice, through each door against identical clusters; the doors must agree.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { ChannelPool } from '../../src/remote/channel-pool.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import type { WireAllocationRequest } from '../../src/allocation/wire.ts';
import { AllocatorError } from '../../src/client/index.ts';
import { ResponseType } from '../../src/protocol/proto.ts';
import { toJson } from '../../src/protocol/proto-json.ts';
import { devCerts } from '../helpers/certs.ts';
import { gameServer as gs, OBJECT_PROPERTY_NAMES } from '../helpers/game-servers.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

interface Case {
  readonly name: string;
  readonly cluster: GameServer[];
  readonly request: WireAllocationRequest;
  /** Name of the GameServer expected, or a gRPC code name for a refusal. */
  readonly expect: string | { code: 'RESOURCE_EXHAUSTED' | 'INVALID_ARGUMENT' };
  readonly config?: Record<string, unknown>;
  /** Further checks on the proto3 JSON response and the stored GameServer. */
  readonly check?: (res: Record<string, any>, stored: GameServer) => void;
}

const counter = (count: number, capacity: number) => ({ count, capacity });
const list = (capacity: number, values: string[]) => ({ capacity, values });

const CASES: Case[] = [
  {
    name: 'no selector takes any Ready GameServer; response carries every status field and source "local"',
    cluster: [
      gs({
        name: 'a', address: '10.0.0.7', nodeName: 'node-7', labels: { fleet: 'x' },
        addresses: [{ type: 'InternalIP', address: '10.0.0.7' }, { type: 'Hostname', address: 'node-7' }],
        ports: [{ name: 'game', port: 7777 }, { name: 'voice', port: 7778 }],
        counters: { rooms: counter(1, 4) }, lists: { players: list(8, ['p1']) },
      }),
    ],
    request: { namespace: 'default' },
    expect: 'a',
    check: (res) => {
      assert.equal(res.address, '10.0.0.7');
      assert.equal(res.nodeName, 'node-7');
      assert.equal(res.source, 'local');
      assert.deepEqual(res.ports, [{ name: 'game', port: 7777 }, { name: 'voice', port: 7778 }]);
      assert.deepEqual(res.addresses, [{ type: 'InternalIP', address: '10.0.0.7' }, { type: 'Hostname', address: 'node-7' }]);
      assert.deepEqual(res.counters, { rooms: { count: '1', capacity: '4' } });
      assert.deepEqual(res.lists, { players: { values: ['p1'], capacity: '8' } });
      assert.equal(res.metadata.labels.fleet, 'x');
      assert.match(res.metadata.annotations['agones.dev/last-allocated'], /^\d{4}-\d\d-\d\dT/);
    },
  },
  {
    name: 'namespace: GameServers of other namespaces are never allocated',
    cluster: [gs({ name: 'other', namespace: 'other' })],
    request: { namespace: 'default' },
    expect: { code: 'RESOURCE_EXHAUSTED' },
  },
  {
    name: 'only Ready (or Allocated when asked) GameServers qualify; deleting ones never',
    cluster: [gs({ name: 'a', state: 'Scheduled' }), gs({ name: 'b', state: 'Shutdown' }), gs({ name: 'c', deleting: true })],
    request: { namespace: 'default' },
    expect: { code: 'RESOURCE_EXHAUSTED' },
  },
  {
    name: 'matchLabels: every label must match',
    cluster: [gs({ name: 'a', labels: { mode: 'casual' } }), gs({ name: 'b', labels: { mode: 'ranked', map: 'x' } })],
    request: { namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'ranked', map: 'x' } }] },
    expect: 'b',
  },
  {
    name: 'selectors in order: the first selector that matches anything wins',
    cluster: [gs({ name: 'a', labels: { tier: 'gold' } }), gs({ name: 'b', labels: { tier: 'silver' } })],
    request: { namespace: 'default', gameServerSelectors: [{ matchLabels: { tier: 'bronze' } }, { matchLabels: { tier: 'silver' } }, { matchLabels: { tier: 'gold' } }] },
    expect: 'b',
  },
  {
    name: 'gameServerState ALLOCATED re-allocates an Allocated GameServer with room',
    cluster: [gs({ name: 'ready' }), gs({ name: 'busy', state: 'Allocated', counters: { rooms: counter(1, 4) } })],
    request: {
      namespace: 'default',
      gameServerSelectors: [{ gameServerState: 'ALLOCATED', counters: { rooms: { minAvailable: 1 } } }, { gameServerState: 'READY' }],
      counters: { rooms: { action: { value: 'Increment' }, amount: { value: '1' } } },
    },
    expect: 'busy',
    check: (res, stored) => {
      assert.deepEqual(res.counters.rooms, { count: '2', capacity: '4' });
      assert.equal(stored.state, 'Allocated');
    },
  },
  {
    name: 'players: available room within [min, max] when PlayerAllocationFilter is on',
    cluster: [
      gs({ name: 'full', players: { count: 9, capacity: 10 } }),
      gs({ name: 'roomy', players: { count: 2, capacity: 10 } }),
    ],
    request: { namespace: 'default', gameServerSelectors: [{ players: { minAvailable: 5, maxAvailable: 10 } }] },
    config: { allocation: { playerAllocationFilter: true } },
    expect: 'roomy',
  },
  {
    name: 'players: ignored while PlayerAllocationFilter is off (Agones default)',
    cluster: [gs({ name: 'full', players: { count: 10, capacity: 10 } })],
    request: { namespace: 'default', gameServerSelectors: [{ players: { minAvailable: 5, maxAvailable: 10 } }] },
    expect: 'full',
  },
  {
    name: 'counters: available and count bounds; a missing counter never matches',
    cluster: [
      gs({ name: 'none' }),
      gs({ name: 'low', counters: { rooms: counter(3, 4) } }),
      gs({ name: 'ok', counters: { rooms: counter(1, 4) } }),
      gs({ name: 'empty', counters: { rooms: counter(0, 4) } }),
    ],
    request: { namespace: 'default', gameServerSelectors: [{ counters: { rooms: { minAvailable: 2, minCount: 1 } } }] },
    expect: 'ok',
  },
  {
    name: 'counters: maxAvailable bounds the room left (0 = unbounded)',
    cluster: [gs({ name: 'a', counters: { rooms: counter(0, 10) } }), gs({ name: 'b', counters: { rooms: counter(8, 10) } })],
    request: { namespace: 'default', gameServerSelectors: [{ counters: { rooms: { maxAvailable: 3 } } }] },
    expect: 'b',
  },
  {
    name: 'lists: containsValue and minAvailable',
    cluster: [
      gs({ name: 'a', lists: { maps: list(3, ['harbour', 'canyon', 'dunes']) } }),
      gs({ name: 'b', lists: { maps: list(5, ['canyon']) } }),
      gs({ name: 'c', lists: { maps: list(5, ['harbour']) } }),
    ],
    request: { namespace: 'default', gameServerSelectors: [{ lists: { maps: { containsValue: 'canyon', minAvailable: 1 } } }] },
    expect: 'b',
  },
  {
    name: 'deprecated preferred then required, when gameServerSelectors is empty',
    cluster: [gs({ name: 'req', labels: { k: 'req' } }), gs({ name: 'pref2', labels: { k: 'p2' } })],
    request: {
      namespace: 'default',
      preferredGameServerSelectors: [{ matchLabels: { k: 'p1' } }, { matchLabels: { k: 'p2' } }],
      requiredGameServerSelector: { matchLabels: { k: 'req' } },
    },
    expect: 'pref2',
  },
  {
    name: 'deprecated required alone restricts the pick',
    cluster: [gs({ name: 'a', labels: { k: 'a' } }), gs({ name: 'b', labels: { k: 'b' } })],
    request: { namespace: 'default', requiredGameServerSelector: { matchLabels: { k: 'b' } } },
    expect: 'b',
  },
  {
    name: 'gameServerSelectors wins over the deprecated fields',
    cluster: [gs({ name: 'a', labels: { k: 'a' } }), gs({ name: 'b', labels: { k: 'b' } })],
    request: { namespace: 'default', gameServerSelectors: [{ matchLabels: { k: 'a' } }], requiredGameServerSelector: { matchLabels: { k: 'b' } } },
    expect: 'a',
  },
  {
    name: 'Packed: the node with more Allocated GameServers first',
    cluster: [
      gs({ name: 'a', nodeName: 'n1' }), gs({ name: 'b', nodeName: 'n2' }),
      gs({ name: 'x', nodeName: 'n2', state: 'Allocated' }),
    ],
    request: { namespace: 'default' },
    expect: 'b',
  },
  {
    name: 'Packed: then the node with more Ready GameServers, then name',
    cluster: [gs({ name: 'c', nodeName: 'n1' }), gs({ name: 'b', nodeName: 'n2' }), gs({ name: 'd', nodeName: 'n2' }), gs({ name: 'a', nodeName: 'n3' })],
    request: { namespace: 'default', scheduling: 'Packed' },
    expect: 'b',
  },
  {
    name: 'priorities: Counter Ascending takes the least room first; a GameServer with the key precedes one without',
    cluster: [
      gs({ name: 'a' }),
      gs({ name: 'b', counters: { rooms: counter(0, 10) } }),
      gs({ name: 'c', counters: { rooms: counter(7, 10) } }),
    ],
    request: { namespace: 'default', priorities: [{ type: 'Counter', key: 'rooms', order: 'Ascending' }] },
    expect: 'c',
  },
  {
    name: 'priorities: List Descending takes the most room first (Distributed with priorities is deterministic)',
    cluster: [gs({ name: 'a', lists: { p: list(10, ['1', '2']) } }), gs({ name: 'b', lists: { p: list(10, []) } })],
    request: { namespace: 'default', scheduling: 'Distributed', priorities: [{ type: 'List', key: 'p', order: 'Descending' }] },
    expect: 'b',
  },
  {
    name: 'counter actions: Increment is clamped to capacity; capacity applies first',
    cluster: [gs({ name: 'a', counters: { rooms: counter(3, 10), score: counter(5, 10) } })],
    request: {
      namespace: 'default',
      counters: {
        rooms: { action: { value: 'Increment' }, amount: { value: '100' } },
        score: { action: { value: 'Decrement' }, amount: { value: '1' }, capacity: { value: '2' } },
      },
    },
    expect: 'a',
    check: (res, stored) => {
      assert.deepEqual(res.counters.rooms, { count: '10', capacity: '10' });
      assert.deepEqual(res.counters.score, { count: '1', capacity: '2' });
      assert.deepEqual(stored.counters.rooms, { count: 10, capacity: 10 });
    },
  },
  {
    name: 'counter actions: Decrement is clamped to 0; unknown counters are skipped',
    cluster: [gs({ name: 'a', counters: { rooms: counter(1, 10) } })],
    request: { namespace: 'default', counters: { rooms: { action: { value: 'Decrement' }, amount: { value: '5' } }, nope: { action: { value: 'Increment' }, amount: { value: '1' } } } },
    expect: 'a',
    check: (res) => assert.deepEqual(res.counters, { rooms: { count: '0', capacity: '10' } }),
  },
  {
    name: 'list actions: capacity cuts first, additions dedupe and stop at capacity, then deletions',
    cluster: [gs({ name: 'a', lists: { p: list(10, ['a', 'b', 'c', 'd']) } })],
    request: { namespace: 'default', lists: { p: { capacity: { value: '5' }, addValues: ['b', 'e', 'f', 'g'], deleteValues: ['a', 'zz'] } } },
    expect: 'a',
    check: (res) => assert.deepEqual(res.lists.p, { values: ['b', 'c', 'd', 'e'], capacity: '5' }),
  },
  {
    name: 'metadata: labels and annotations merged into the GameServer; the response has its whole maps',
    cluster: [gs({ name: 'a', labels: { keep: 'yes', over: 'old' }, annotations: { note: 'x' } })],
    request: { namespace: 'default', metadata: { labels: { over: 'new', match: 'm-1' }, annotations: { 'example.com/lobby': 'L1' } } },
    expect: 'a',
    check: (res, stored) => {
      assert.deepEqual(res.metadata.labels, { keep: 'yes', over: 'new', match: 'm-1' });
      assert.equal(res.metadata.annotations.note, 'x');
      assert.equal(res.metadata.annotations['example.com/lobby'], 'L1');
      assert.equal(stored.labels.match, 'm-1');
    },
  },
  {
    name: 'metaPatch is used only when metadata is absent',
    cluster: [gs({ name: 'a' })],
    request: { namespace: 'default', metaPatch: { labels: { from: 'metaPatch' } } },
    expect: 'a',
    check: (res) => assert.equal(res.metadata.labels.from, 'metaPatch'),
  },
  {
    name: 'metadata wins over metaPatch even when empty',
    cluster: [gs({ name: 'a' })],
    request: { namespace: 'default', metadata: {}, metaPatch: { labels: { from: 'metaPatch' } } },
    expect: 'a',
    check: (res) => assert.equal(res.metadata.labels.from, undefined),
  },
  {
    name: 'invalid selector bound → INVALID_ARGUMENT naming the field',
    cluster: [gs({ name: 'a' })],
    request: { namespace: 'default', gameServerSelectors: [{ counters: { rooms: { minCount: '-1' } } }] },
    expect: { code: 'INVALID_ARGUMENT' },
  },
  ...objectPropertyKeyCases(),
];

/**
 * Issue 12 item 1: names that are also properties of every JavaScript object. For Agones (Go
 * maps) they are ordinary strings: a name the GameServer lacks does not match and its action is
 * skipped; a name it has behaves like any other.
 */
function objectPropertyKeyCases(): Case[] {
  const own = (m: object) => Object.keys(m).sort();
  const cases: Case[] = [
    {
      name: 'object-property keys: a list action on "constructor" the GameServer lacks is skipped',
      cluster: [gs({ name: 'a', lists: { players: list(8, []) } })],
      request: { namespace: 'default', lists: { constructor: { addValues: ['p1'] } } },
      expect: 'a',
      check: (res, stored) => {
        assert.deepEqual(res.lists, { players: { values: [], capacity: '8' } });
        assert.deepEqual(own(stored.lists), ['players']);
      },
    },
    {
      name: 'object-property keys: a selector on list "toString" the GameServer lacks falls through to the next selector',
      cluster: [gs({ name: 'a', labels: { pool: 'second' } })],
      request: { namespace: 'default', gameServerSelectors: [{ lists: { toString: {} } }, {}] },
      expect: 'a',
    },
    {
      name: 'object-property keys: a counter action on "constructor" the GameServer lacks is skipped',
      cluster: [gs({ name: 'a', counters: { rooms: counter(1, 4) } })],
      request: { namespace: 'default', counters: { constructor: { action: { value: 'Increment' }, amount: { value: '1' } } } },
      expect: 'a',
      check: (res, stored) => {
        assert.deepEqual(res.counters, { rooms: { count: '1', capacity: '4' } });
        assert.deepEqual(own(stored.counters), ['rooms']);
      },
    },
  ];
  for (const k of OBJECT_PROPERTY_NAMES) {
    cases.push(
      {
        name: `object-property key ${JSON.stringify(k)}: selectors on it never match a GameServer without it`,
        cluster: [gs({ name: 'a' }), gs({ name: 'b', labels: { pool: 'last' } })],
        request: {
          namespace: 'default',
          gameServerSelectors: [{ counters: { [k]: {} } }, { lists: { [k]: {} } }, { matchLabels: { pool: 'last' } }],
          priorities: [{ type: 'Counter', key: k }, { type: 'List', key: k, order: 'Descending' }],
          counters: { [k]: { action: { value: 'Decrement' }, amount: { value: '1' }, capacity: { value: '3' } } },
          lists: { [k]: { addValues: ['x'], deleteValues: ['y'], capacity: { value: '2' } } },
        },
        expect: 'b',
        check: (res, stored) => {
          assert.deepEqual(res.counters, {});
          assert.deepEqual(res.lists, {});
          assert.deepEqual(own(stored.counters), []);
          assert.deepEqual(own(stored.lists), []);
        },
      },
      {
        name: `object-property key ${JSON.stringify(k)}: a GameServer that has it is selected, ordered and changed like any other`,
        cluster: [
          gs({ name: 'a', counters: { [k]: counter(1, 5) }, lists: { [k]: list(3, ['v']) } }),
          gs({ name: 'b', counters: { [k]: counter(0, 5) }, lists: { [k]: list(3, ['v']) } }),
          gs({ name: 'c', counters: { [k]: counter(5, 5) }, lists: { [k]: list(3, ['v']) } }),
        ],
        request: {
          namespace: 'default',
          gameServerSelectors: [{ counters: { [k]: { minAvailable: 1 } }, lists: { [k]: { containsValue: 'v' } } }],
          priorities: [{ type: 'Counter', key: k, order: 'Descending' }],
          counters: { [k]: { action: { value: 'Increment' }, amount: { value: '2' } } },
          lists: { [k]: { addValues: ['w'] } },
        },
        expect: 'b',
        check: (res, stored) => {
          assert.deepEqual(res.counters, Object.fromEntries([[k, { count: '2', capacity: '5' }]]));
          assert.deepEqual(res.lists, Object.fromEntries([[k, { values: ['v', 'w'], capacity: '3' }]]));
          assert.deepEqual(own(stored.counters), [k]);
          assert.deepEqual(Object.getOwnPropertyDescriptor(stored.counters, k)?.value, counter(2, 5));
        },
      },
    );
  }
  return cases;
}

function normalise(res: Record<string, any>): Record<string, any> {
  const copy = structuredClone(res);
  delete copy.metadata?.annotations?.['agones.dev/last-allocated'];
  return copy;
}

describe('allocation semantics over gRPC and REST', async () => {
  const certs = devCerts({ after });
  for (const c of CASES) {
    test(c.name, async (t) => {
      const start = () => startGateway(t, { certs, gameServers: c.cluster.map((g) => structuredClone(g)), ...(c.config ? { config: c.config } : {}) });
      const [viaGrpc, viaRest]: [TestGateway, TestGateway] = await Promise.all([start(), start()]);
      let grpcJson: Record<string, any> | null = null;
      let grpcCode: string | null = null;
      try {
        const res = await viaGrpc.client().allocate(c.request, { deadline: 5_000 });
        grpcJson = toJson(res as unknown as Record<string, unknown>, ResponseType)!;
      } catch (err) {
        assert.ok(err instanceof AllocatorError, String(err));
        grpcCode = err.codeName;
      }
      const rest = await viaRest.rest(toJsonRequest(c.request));
      if (typeof c.expect === 'string') {
        assert.equal(grpcCode, null, `gRPC refused: ${grpcCode}`);
        assert.equal(grpcJson!.gameServerName, c.expect);
        assert.equal(rest.status, 200, JSON.stringify(rest.body));
        assert.deepEqual(normalise(rest.body), normalise(grpcJson!), 'REST and gRPC disagree');
        const stored = viaGrpc.store.get(grpcJson!.namespace ?? 'default', c.expect) ?? viaGrpc.store.list().find((g) => g.name === c.expect)!;
        assert.equal(stored.state, 'Allocated');
        c.check?.(grpcJson!, stored);
      } else {
        assert.equal(grpcCode, c.expect.code);
        assert.equal(rest.body.code, c.expect.code === 'RESOURCE_EXHAUSTED' ? 8 : 3);
        assert.equal(rest.status, c.expect.code === 'RESOURCE_EXHAUSTED' ? 429 : 400);
        // A refused request changes nothing.
        assert.ok(viaGrpc.store.list().every((g) => g.state !== 'Allocated' || c.cluster.find((x) => x.name === g.name)?.state === 'Allocated'));
      }
    });
  }
});

/** The wire request as proto3 JSON (wrappers unwrapped), as a REST caller would send it. */
function toJsonRequest(req: WireAllocationRequest): unknown {
  return JSON.parse(JSON.stringify(req), (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && 'value' in v) return (v as { value: unknown }).value;
    return v;
  });
}

test('object-property keys in the fleet file are ordinary names (YAML → embedded cluster → gRPC)', async (t) => {
  const certs = devCerts(t);
  const fleet = parseYaml(`
nodes: [{ name: n1, addresses: [{ type: InternalIP, address: 10.0.0.1 }] }]
fleets:
  - name: f
    replicas: 1
    labels: { constructor: yes }
    counters: { __proto__: { count: 1, capacity: 3 }, constructor: { capacity: 2 } }
    lists: { toString: { capacity: 2, values: [a] } }
`);
  const gw = await startGateway(t, { certs, fleet });
  const res = await gw.client().allocate(
    JSON.parse(`{"namespace":"default","gameServerSelectors":[{"matchLabels":{"constructor":"yes"},"counters":{"__proto__":{"minCount":"1"}},"lists":{"toString":{"containsValue":"a"}}}],
      "counters":{"__proto__":{"action":{"value":"Increment"},"amount":{"value":"1"}}},"lists":{"toString":{"addValues":["b"]}}}`),
    { deadline: 5_000 },
  );
  const json = toJson(res as unknown as Record<string, unknown>, ResponseType)!;
  assert.equal(JSON.stringify(json.counters), '{"__proto__":{"count":"2","capacity":"3"},"constructor":{"count":"0","capacity":"2"}}');
  assert.deepEqual(json.lists, { toString: { values: ['a', 'b'], capacity: '2' } });
});

test('GetCapacity: a namespace named "__proto__" is refused as an invalid name, never read as a property', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a' })] });
  const pool = new ChannelPool();
  t.after(() => pool.close());
  const stub = pool.get(gw.grpcAddress, 'test', { cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), ca: readFileSync(certs.caFile), version: 'x' }, '');
  const call = (namespaces: string[]) =>
    new Promise<any>((resolve) =>
      stub.GetCapacity({ namespaces }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err, r) => resolve(err ?? r)),
    );
  const refused = await call(['__proto__', 'default']);
  assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
  assert.match(refused.details, /namespaces\[0\]: invalid value "__proto__"/);
  const res = await call(['default']);
  assert.deepEqual(Object.keys(res.namespaces), ['default']);
  assert.equal(Number(res.namespaces.default.total.ready), 1);
});
