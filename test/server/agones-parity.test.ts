// Issue 15: the last differences from agones-allocator, one table per item, each row naming the
// Agones source file whose behaviour it matches (googleforgames/agones, read for behaviour only).
// Everything runs through real gateways on 127.0.0.1 with real mTLS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AllocatorError } from '../../src/client/index.ts';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { allocateMethod } from '../../src/protocol/proto.ts';
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { gameServer as gs } from '../helpers/game-servers.ts';
import { caught, startGateway } from '../helpers/gateway.ts';
import { attemptsOf, policy, policyDir } from '../multicluster/fixtures.ts';

const certs: TestCerts = devCerts({ after });

/** A stand-in for agones-allocator that answers every Allocate with one status (no Agones code). */
async function statusOnlyAllocator(t: TestContext, code: grpc.status, details: string): Promise<string> {
  const server = new grpc.Server();
  server.addService({ Allocate: allocateMethod }, { Allocate: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code, details }) });
  const creds = grpc.ServerCredentials.createSsl(readFileSync(certs.caFile), [{ cert_chain: readFileSync(certs.serverCertFile), private_key: readFileSync(certs.serverKeyFile) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => new Promise<void>((r) => server.tryShutdown(() => r())));
  return `127.0.0.1:${port}`;
}

describe('item 1: status of "no GameServer" (agones cmd/allocator/main.go: HTTP_UNALLOCATED_STATUS_CODE, default 429; grpcCodeFromHTTPStatus)', () => {
  const rows: { setting: Record<string, unknown>; env?: Record<string, string>; grpc: string; http: number; restCode: number }[] = [
    { setting: {}, grpc: 'RESOURCE_EXHAUSTED', http: 429, restCode: 8 },
    { setting: { unallocatedStatusCode: 429 }, grpc: 'RESOURCE_EXHAUSTED', http: 429, restCode: 8 },
    { setting: { unallocatedStatusCode: 503 }, grpc: 'UNAVAILABLE', http: 503, restCode: 14 },
  ];
  for (const row of rows) {
    test(`allocation ${JSON.stringify(row.setting)} → gRPC ${row.grpc}, REST ${row.http}, reason NO_GAME_SERVER on both doors`, async (t) => {
      const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a', state: 'Allocated' })], config: { allocation: row.setting } });
      const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default' }, { deadline: 5_000 }));
      assert.equal(err.codeName, row.grpc);
      assert.equal(err.errorInfo?.reason, 'NO_GAME_SERVER');
      assert.equal(err.message.includes('there is no available GameServer to allocate'), true);
      const rest = await gw.rest({ namespace: 'default' });
      assert.equal(rest.status, row.http);
      assert.equal(rest.body.code, row.restCode);
      assert.equal(rest.body.details[0].reason, 'NO_GAME_SERVER');
    });
  }

  test('agones-allocator\'s own variable HTTP_UNALLOCATED_STATUS_CODE is honoured; GATEWAY_* overrides it; only 429 and 503 are accepted', () => {
    const env = (e: Record<string, string>) => ({ GATEWAY_TLS__CERT_FILE: 'c', GATEWAY_TLS__KEY_FILE: 'k', GATEWAY_TLS__CLIENT_CA_DIR: 'd', GATEWAY_CLUSTER__KIND: 'memory', GATEWAY_CLUSTER__FLEET_FILE: 'f', ...e });
    assert.equal(loadConfig([], env({})).allocation.unallocatedStatusCode, 429);
    assert.equal(loadConfig([], env({ HTTP_UNALLOCATED_STATUS_CODE: '503' })).allocation.unallocatedStatusCode, 503);
    assert.equal(loadConfig([], env({ HTTP_UNALLOCATED_STATUS_CODE: '503', GATEWAY_ALLOCATION__UNALLOCATED_STATUS_CODE: '429' })).allocation.unallocatedStatusCode, 429);
    assert.throws(() => loadConfig([], env({ HTTP_UNALLOCATED_STATUS_CODE: '500' })), (e: Error) => e instanceof ConfigError && /allocation\.unallocatedStatusCode/.test(e.message));
  });

  // A remote agones-allocator set to 503 says "no GameServer" as UNAVAILABLE with its fixed message
  // (pkg/allocation/converters/converter.go, convertStateV1ToError): that is a full cluster, not a failure.
  const remoteRows: { name: string; code: grpc.status; details: string; front: Record<string, unknown>; grpc: string; reason: string; outcome: string }[] = [
    { name: 'UNAVAILABLE "no GameServer" (remote set to 503), front default', code: grpc.status.UNAVAILABLE, details: 'there is no available GameServer to allocate', front: {}, grpc: 'RESOURCE_EXHAUSTED', reason: 'NO_GAME_SERVER', outcome: 'no-capacity' },
    { name: 'UNAVAILABLE "no GameServer" (remote set to 503), front set to 503', code: grpc.status.UNAVAILABLE, details: 'there is no available GameServer to allocate', front: { unallocatedStatusCode: 503 }, grpc: 'UNAVAILABLE', reason: 'NO_GAME_SERVER', outcome: 'no-capacity' },
    { name: 'RESOURCE_EXHAUSTED (remote default), front set to 503', code: grpc.status.RESOURCE_EXHAUSTED, details: 'there is no available GameServer to allocate', front: { unallocatedStatusCode: 503 }, grpc: 'UNAVAILABLE', reason: 'NO_GAME_SERVER', outcome: 'no-capacity' },
    { name: 'UNAVAILABLE for any other reason is still a failure', code: grpc.status.UNAVAILABLE, details: 'connection reset', front: { unallocatedStatusCode: 503 }, grpc: 'UNAVAILABLE', reason: 'ALL_TARGETS_FAILED', outcome: 'ambiguous' },
  ];
  for (const row of remoteRows) {
    test(`reading a remote: ${row.name} → ${row.reason}`, async (t) => {
      const remote = await statusOnlyAllocator(t, row.code, row.details);
      const dir = policyDir(t, certs, [policy('remote', { priority: 1, endpoints: [remote] })]);
      const gw = await startGateway(t, {
        certs,
        config: { allocation: row.front, multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir } },
      });
      const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', multiClusterSetting: { enabled: true } }, { deadline: 5_000 }));
      assert.equal(err.errorInfo?.reason, row.reason, err.message);
      assert.equal(err.codeName, row.grpc);
      assert.deepEqual(attemptsOf(err).map((a) => a.outcome), [row.outcome]);
    });
  }
});

describe('item 3: metadata keys and values follow Kubernetes\' own rules per kind (agones pkg/apis/allocation/v1/gameserverallocation.go MetaPatch.Validate → apimachinery ValidateLabels / ValidateAnnotations)', () => {
  const long = (n: number) => 'a'.repeat(n);
  const rows: { what: string; metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; ok: boolean }[] = [
    { what: 'annotation key with upper-case prefix and name (lowercased before the check)', metadata: { annotations: { 'Example.com/matchId': 'm-1' } }, ok: true },
    { what: 'annotation key all upper case', metadata: { annotations: { 'EXAMPLE.COM/LOBBY': 'x' } }, ok: true },
    { what: 'annotation key with KELVIN SIGN (Go lowercases it to "k")', metadata: { annotations: { '\u212Aey': 'x' } }, ok: true },
    { what: 'annotation key with DOTTED CAPITAL I (Go lowercases it to "i")', metadata: { annotations: { '\u0130d': 'x' } }, ok: true },
    { what: 'annotation value: any text', metadata: { annotations: { note: 'any text: spaces, ünïcode, {"json": 1}' } }, ok: true },
    { what: 'annotation key with an empty prefix', metadata: { annotations: { '/x': 'v' } }, ok: false },
    { what: 'annotation key with two slashes', metadata: { annotations: { 'a/b/c': 'v' } }, ok: false },
    { what: 'annotation key name starting with "-"', metadata: { annotations: { '-x': 'v' } }, ok: false },
    { what: 'annotation key name of 64 characters', metadata: { annotations: { [long(64)]: 'v' } }, ok: false },
    { what: 'annotation key with a prefix that is no DNS subdomain even lowercased', metadata: { annotations: { 'ex_ample.com/x': 'v' } }, ok: false },
    { what: 'label key with upper-case name', metadata: { labels: { MatchId: 'm-1' } }, ok: true },
    { what: 'label key with upper-case prefix (labels are not lowercased)', metadata: { labels: { 'Example.com/matchId': 'm-1' } }, ok: false },
    { what: 'label value empty', metadata: { labels: { k: '' } }, ok: true },
    { what: 'label value with a space', metadata: { labels: { k: 'a b' } }, ok: false },
    { what: 'label value of 64 characters', metadata: { labels: { k: long(64) } }, ok: false },
  ];
  for (const row of rows) {
    test(`${row.what} → ${row.ok ? 'allocated, written as given' : 'INVALID_ARGUMENT naming the key'}`, async (t) => {
      const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a' }), gs({ name: 'b' })] });
      const viaGrpc = await gw.client().allocate({ namespace: 'default', metadata: row.metadata }, { deadline: 5_000 }).catch((e: unknown) => e);
      const viaRest = await gw.rest({ namespace: 'default', metadata: row.metadata });
      if (row.ok) {
        assert.ok(!(viaGrpc instanceof Error), String(viaGrpc));
        assert.equal(viaRest.status, 200, JSON.stringify(viaRest.body));
        const [k, v] = Object.entries(row.metadata.labels ?? row.metadata.annotations ?? {})[0]!;
        for (const name of ['a', 'b']) {
          const stored = gw.store.get('default', name)!;
          assert.equal((row.metadata.labels ? stored.labels : stored.annotations)[k], v);
        }
      } else {
        assert.ok(viaGrpc instanceof AllocatorError);
        assert.equal(viaGrpc.codeName, 'INVALID_ARGUMENT');
        assert.match(viaGrpc.message, /INVALID_ARGUMENT: metadata\.(labels|annotations)\[/);
        assert.equal(viaRest.status, 400);
        assert.ok(gw.store.list().every((g) => g.state === 'Ready'));
      }
    });
  }
});

describe('item 4: policySelector is read only for multi-cluster allocations (agones pkg/gameserverallocations/allocator.go: applyMultiClusterAllocation alone converts it)', () => {
  const bad = { matchLabels: { 'Bad Key': 'x' } };
  const rows: { enabled: boolean; expect: string }[] = [
    { enabled: false, expect: 'allocated locally, the selector ignored' },
    { enabled: true, expect: 'INVALID_ARGUMENT naming multiClusterSetting.policySelector' },
  ];
  for (const row of rows) {
    test(`invalid policySelector, multiClusterSetting.enabled ${row.enabled} → ${row.expect}`, async (t) => {
      const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a' })] });
      const request = { namespace: 'default', multiClusterSetting: { enabled: row.enabled, policySelector: bad } };
      const viaGrpc = await gw.client().allocate(request, { deadline: 5_000 }).catch((e: unknown) => e);
      const viaRest = await gw.rest(request);
      if (!row.enabled) {
        assert.ok(!(viaGrpc instanceof Error), String(viaGrpc));
        assert.equal(viaRest.status, 429, JSON.stringify(viaRest.body)); // the only GameServer went to the gRPC call
      } else {
        assert.ok(viaGrpc instanceof AllocatorError);
        assert.equal(viaGrpc.codeName, 'INVALID_ARGUMENT');
        assert.match(viaGrpc.message, /multiClusterSetting\.policySelector\.matchLabels\["Bad Key"\]/);
        assert.equal(viaRest.status, 400);
      }
    });
  }
});

describe('item 7: counter and list actions in Agones\' order, and agones.dev/last-allocated to the nanosecond', () => {
  type Counter = { count: number; capacity: number };
  type List = { capacity: number; values: string[] };
  // agones pkg/apis/allocation/v1/gameserverallocation.go (CounterAction.CounterActions) and
  // pkg/apis/agones/v1/gameserver.go (UpdateCounterCapacity, then UpdateCount: > capacity, then < 0).
  const counterRows: { what: string; stored: Counter; action: Record<string, unknown>; expect: Counter }[] = [
    { what: 'count above capacity, Decrement: subtract first, then cut to capacity', stored: { count: 10, capacity: 5 }, action: { action: 'Decrement', amount: '2' }, expect: { count: 5, capacity: 5 } },
    { what: 'count above capacity, empty action: untouched', stored: { count: 10, capacity: 5 }, action: {}, expect: { count: 10, capacity: 5 } },
    { what: 'count above capacity, Increment: cut to capacity', stored: { count: 10, capacity: 5 }, action: { action: 'Increment', amount: '1' }, expect: { count: 5, capacity: 5 } },
    { what: 'new capacity below the count cuts it first', stored: { count: 10, capacity: 5 }, action: { capacity: '8' }, expect: { count: 8, capacity: 8 } },
    { what: 'new capacity above the count, then Decrement', stored: { count: 10, capacity: 5 }, action: { capacity: '20', action: 'Decrement', amount: '3' }, expect: { count: 7, capacity: 20 } },
    { what: 'Decrement below zero stops at 0', stored: { count: 2, capacity: 5 }, action: { action: 'Decrement', amount: '5' }, expect: { count: 0, capacity: 5 } },
  ];
  // agones pkg/apis/allocation/v1/gameserverallocation.go (ListAction.ListActions) and
  // pkg/apis/agones/v1/gameserver.go (UpdateListCapacity → truncateList; AppendListValues →
  // MergeRemoveDuplicates, truncateList; DeleteListValues → deleteValues).
  const listRows: { what: string; stored: List; action: Record<string, unknown>; expect: string[]; capacity?: number }[] = [
    { what: 'values above capacity, empty action: untouched', stored: { capacity: 2, values: ['a', 'b', 'c'] }, action: {}, expect: ['a', 'b', 'c'] },
    { what: 'duplicates already in the list are merged away when values are added', stored: { capacity: 10, values: ['a', 'a', 'b'] }, action: { addValues: ['c', 'c'] }, expect: ['a', 'b', 'c'] },
    { what: 'duplicates already in the list stay when only deleting', stored: { capacity: 10, values: ['a', 'a', 'b'] }, action: { deleteValues: ['b'] }, expect: ['a', 'a'] },
    { what: 'deleting removes every occurrence', stored: { capacity: 10, values: ['a', 'b', 'a'] }, action: { deleteValues: ['a'] }, expect: ['b'] },
    { what: 'values above capacity, additions: merged then truncated', stored: { capacity: 2, values: ['a', 'b', 'c'] }, action: { addValues: ['d'] }, expect: ['a', 'b'] },
    { what: 'new capacity truncates before deletions', stored: { capacity: 10, values: ['a', 'b', 'c', 'd'] }, action: { capacity: '2', deleteValues: ['a'] }, expect: ['b'], capacity: 2 },
  ];
  const wrap = (a: Record<string, unknown>) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, k === 'addValues' || k === 'deleteValues' ? v : { value: v }]));
  for (const row of counterRows) {
    test(`counter: ${row.what} → ${row.expect.count}/${row.expect.capacity}`, async (t) => {
      const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a', counters: { c: row.stored } }), gs({ name: 'b', counters: { c: row.stored } })] });
      const viaGrpc = await gw.client().allocate({ namespace: 'default', counters: { c: wrap(row.action) } }, { deadline: 5_000 });
      const viaRest = await gw.rest({ namespace: 'default', counters: { c: row.action } });
      assert.equal(viaRest.status, 200, JSON.stringify(viaRest.body));
      assert.deepEqual(viaGrpc.counters['c'], { count: { value: String(row.expect.count) }, capacity: { value: String(row.expect.capacity) } });
      assert.deepEqual(viaRest.body.counters.c, { count: String(row.expect.count), capacity: String(row.expect.capacity) });
      for (const name of ['a', 'b']) assert.deepEqual(gw.store.get('default', name)!.counters['c'], row.expect);
    });
  }
  for (const row of listRows) {
    test(`list: ${row.what} → ${JSON.stringify(row.expect)}`, async (t) => {
      const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a', lists: { l: row.stored } }), gs({ name: 'b', lists: { l: row.stored } })] });
      const viaGrpc = await gw.client().allocate({ namespace: 'default', lists: { l: wrap(row.action) } }, { deadline: 5_000 });
      const viaRest = await gw.rest({ namespace: 'default', lists: { l: row.action } });
      assert.equal(viaRest.status, 200, JSON.stringify(viaRest.body));
      assert.deepEqual(viaGrpc.lists['l']?.values, row.expect);
      assert.deepEqual(viaRest.body.lists.l.values, row.expect);
      for (const name of ['a', 'b']) assert.deepEqual(gw.store.get('default', name)!.lists['l'], { capacity: row.capacity ?? row.stored.capacity, values: row.expect });
    });
  }

  // agones pkg/gameserverallocations/allocator.go: time.Now().MarshalText() = RFC 3339 with nanoseconds, trailing zeros dropped.
  test('agones.dev/last-allocated: RFC 3339 with up to nine fractional digits, no trailing zero, the wall-clock time, distinct per allocation', async (t) => {
    const gw = await startGateway(t, { certs, gameServers: [gs({ name: 'a', state: 'Allocated' })] });
    const stamps: string[] = [];
    for (let i = 0; i < 8; i++) {
      const before = Date.now();
      const r = await gw.client().allocate({ namespace: 'default', gameServerSelectors: [{ gameServerState: 'ALLOCATED' }] }, { deadline: 5_000 });
      const after = Date.now();
      const stamp = r.metadata!.annotations['agones.dev/last-allocated']!;
      assert.match(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$/);
      const ms = Date.parse(stamp.replace(/(\.\d{3})\d*/, '$1'));
      assert.ok(ms >= before - 2 && ms <= after + 2, `${stamp} not within [${new Date(before).toISOString()}, ${new Date(after).toISOString()}]`);
      stamps.push(stamp);
    }
    assert.equal(new Set(stamps).size, stamps.length, 'every re-allocation has its own stamp');
    assert.ok(stamps.some((s) => /\.\d{4,9}Z$/.test(s)), `sub-millisecond digits: ${stamps.join(' ')}`);
  });
});

describe('item 2: int64 end to end (agones proto/allocation/allocation.proto and pkg/apis/agones/v1 CounterStatus: int64; gameserver.go UpdateCount on Go int64)', () => {
  const P53 = 2n ** 53n; // 9007199254740992: the first integer a double cannot tell from its successor
  const MAX = 2n ** 63n - 1n;
  const big = (n: bigint) => (n > BigInt(Number.MAX_SAFE_INTEGER) ? n : Number(n));
  const rows: { what: string; cluster: { name: string; count: bigint; capacity: bigint }[]; grpc: Record<string, unknown>; rest: string; expect: string | 'INVALID_ARGUMENT'; count?: string; capacity?: string }[] = [
    {
      what: 'selector minCount 2^53+1 tells 2^53+1 from 2^53',
      cluster: [{ name: 'a', count: P53, capacity: MAX }, { name: 'b', count: P53 + 1n, capacity: MAX }],
      grpc: { gameServerSelectors: [{ counters: { c: { minCount: String(P53 + 1n) } } }] },
      rest: `{"namespace":"default","gameServerSelectors":[{"counters":{"c":{"minCount":${P53 + 1n}}}}]}`,
      expect: 'b', count: String(P53 + 1n), capacity: String(MAX),
    },
    {
      what: 'selector maxAvailable bounds room exactly (room 2^53 vs 2^53+1)',
      cluster: [{ name: 'a', count: 0n, capacity: P53 + 1n }, { name: 'b', count: 1n, capacity: P53 + 1n }],
      grpc: { gameServerSelectors: [{ counters: { c: { maxAvailable: String(P53) } } }] },
      rest: `{"namespace":"default","gameServerSelectors":[{"counters":{"c":{"maxAvailable":"${P53}"}}}]}`,
      expect: 'b', count: '1', capacity: String(P53 + 1n),
    },
    {
      what: 'Increment by 2^53+1 is exact in the response and the store',
      cluster: [{ name: 'a', count: 1n, capacity: MAX }],
      grpc: { counters: { c: { action: { value: 'Increment' }, amount: { value: String(P53 + 1n) } } } },
      rest: `{"namespace":"default","counters":{"c":{"action":"Increment","amount":${P53 + 1n}}}}`,
      expect: 'a', count: String(P53 + 2n), capacity: String(MAX),
    },
    {
      what: 'capacity 2^63-1 (int64 max) is accepted',
      cluster: [{ name: 'a', count: 5n, capacity: 10n }],
      grpc: { counters: { c: { capacity: { value: String(MAX) } } } },
      rest: `{"namespace":"default","counters":{"c":{"capacity":"${MAX}"}}}`,
      expect: 'a', count: '5', capacity: String(MAX),
    },
    {
      what: 'Increment past int64 max wraps negative and clamps to 0, as Go int64 arithmetic does in UpdateCount',
      cluster: [{ name: 'a', count: MAX - 1n, capacity: MAX }],
      grpc: { counters: { c: { action: { value: 'Increment' }, amount: { value: '5' } } } },
      rest: '{"namespace":"default","counters":{"c":{"action":"Increment","amount":"5"}}}',
      expect: 'a', count: '0', capacity: String(MAX),
    },
    {
      what: 'capacity 2^63 is out of range → INVALID_ARGUMENT',
      cluster: [{ name: 'a', count: 0n, capacity: 1n }],
      grpc: { counters: { c: { capacity: { value: String(MAX + 1n) } } } },
      rest: `{"namespace":"default","counters":{"c":{"capacity":"${MAX + 1n}"}}}`,
      expect: 'INVALID_ARGUMENT',
    },
  ];
  for (const row of rows) {
    test(`${row.what} → ${row.expect}`, async (t) => {
      const cluster = () => row.cluster.flatMap((c) => [gs({ name: c.name, counters: { c: { count: big(c.count), capacity: big(c.capacity) } } })]);
      const [viaGrpc, viaRest] = await Promise.all([startGateway(t, { certs, gameServers: cluster() }), startGateway(t, { certs, gameServers: cluster() })]);
      const g = await viaGrpc.client().allocate({ namespace: 'default', ...row.grpc }, { deadline: 5_000 }).catch((e: unknown) => e);
      const r = await viaRest.rest(undefined, { raw: row.rest });
      if (row.expect === 'INVALID_ARGUMENT') {
        assert.ok(g instanceof AllocatorError && g.codeName === 'INVALID_ARGUMENT', String(g));
        // (the gRPC client's encoder already wraps 2^63 to -2^63: refused as negative)
        assert.match(g.message, /counters\[c\]\.capacity: must be/);
        assert.equal(r.status, 400);
        assert.match(r.body.message, /^counters\[c\]\.capacity: out of range for int64/);
        return;
      }
      assert.ok(!(g instanceof Error), String(g));
      const res = g as { gameServerName: string; counters: Record<string, { count: { value: string }; capacity: { value: string } }> };
      assert.equal(res.gameServerName, row.expect);
      assert.deepEqual(res.counters['c'], { count: { value: row.count }, capacity: { value: row.capacity } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.gameServerName, row.expect);
      assert.deepEqual(r.body.counters.c, { count: row.count, capacity: row.capacity });
      for (const gw of [viaGrpc, viaRest]) {
        const stored = gw.store.get('default', row.expect)!.counters['c']!;
        assert.equal(String(stored.count), row.count);
        assert.equal(String(stored.capacity), row.capacity);
      }
    });
  }
});

describe('item 5: a GameServer being deleted still counts for its node in Packed ordering (agones pkg/gameservers/pernodecounter.go counts by state alone)', () => {
  const rows: { what: string; deleting: boolean; expect: string }[] = [
    { what: 'an Allocated GameServer being deleted on n2', deleting: true, expect: 'b' },
    { what: 'an Allocated GameServer on n2', deleting: false, expect: 'b' },
  ];
  for (const row of rows) {
    test(`${row.what} makes n2 the busier node → ${row.expect}`, async (t) => {
      const gw = await startGateway(t, {
        certs,
        gameServers: [gs({ name: 'a', nodeName: 'n1' }), gs({ name: 'b', nodeName: 'n2' }), gs({ name: 'x', nodeName: 'n2', state: 'Allocated', deleting: row.deleting, labels: { other: 'yes' } })],
      });
      const r = await gw.client().allocate({ namespace: 'default', gameServerSelectors: [{ gameServerState: 'READY' }] }, { deadline: 5_000 });
      assert.equal(r.gameServerName, row.expect);
      assert.equal(gw.store.get('default', 'x')!.state, 'Allocated');
    });
  }
});
