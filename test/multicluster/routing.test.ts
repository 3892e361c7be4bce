// Multi-cluster routing end to end on 127.0.0.1 with real mTLS: a front gateway (in process)
// routing by policy file to two more gateways (child processes, embedded clusters), to a
// double of agones-allocator, to a dead port and to a black hole.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { AllocatorError } from '../../src/client/index.ts';
import { CLUSTER_TRAILER } from '../../src/server/grpc-server.ts';
import { ChannelPool } from '../../src/remote/channel-pool.ts';
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { caught, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { simpleFleet, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { startAgonesAllocatorDouble, type AgonesAllocatorDouble } from '../helpers/agones-allocator-double.ts';
import { parseFleetFile } from '../../src/cluster/memory/fleet-file.ts';
import { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import { AllocationError } from '../../src/allocation/errors.ts';
import { attemptsOf, blackHole, deadEndpoint, policy, policyDir } from './fixtures.ts';
import { ledgerText, multiClusterLedger, snapshotDouble } from './ledger.ts';

const MC = { enabled: true };
const certs: TestCerts = devCerts({ after });
const [b, c]: GatewayProcess[] = await Promise.all([
  startGatewayProcess({ after }, { certs, name: 'b', fleet: simpleFleet('b', 30) }),
  startGatewayProcess({ after }, { certs, name: 'c', fleet: simpleFleet('c', 30) }),
]) as [GatewayProcess, GatewayProcess];

/** A front gateway with `ready` local GameServers (fleet "a") and these policies. */
async function front(t: TestContext, policies: object[], o: { ready?: number; multiCluster?: Record<string, unknown> } = {}): Promise<TestGateway> {
  const dir = policyDir(t, certs, policies);
  return await startGateway(t, {
    certs,
    gameServers: parseFleetFile(simpleFleet('a', o.ready ?? 0)),
    config: {
      multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, ...o.multiCluster },
      log: { level: 'debug' },
    },
  });
}

/** Allocate calls a child gateway has answered (from its audit log). */
const served = (g: GatewayProcess) => g.logs.filter((l) => l.msg === 'allocated' || l.msg === 'not allocated').length;

describe('routing by policy', () => {
  test('local has capacity → served locally, the remote is not called', async (t) => {
    const before = served(b);
    const a = await front(t, [policy('local', { priority: 1 }), policy('cluster-b', { priority: 2, endpoints: [b.address] })], { ready: 2 });
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    assert.equal(r.source, 'local');
    assert.match(r.gameServerName, /^a-/);
    assert.equal(r.metadata?.annotations['allocator-gateway.dev/cluster'], 'local');
    assert.equal(served(b), before);
  });

  test('local empty → served by the remote gateway; source is the endpoint dialled; cluster in the trailer', async (t) => {
    const a = await front(t, [policy('here', { priority: 1, cluster: 'cluster-a' }), policy('there', { priority: 2, endpoints: [b.address], cluster: 'cluster-b' })]);
    // A raw call, to see the trailer.
    const ca = readFileSync(certs.caFile);
    const pool = new ChannelPool();
    t.after(() => pool.close());
    const stub = pool.get(a.grpcAddress, 'test', { cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), ca, version: 'x' }, '');
    let trailer = '';
    const r = await new Promise<any>((resolve, reject) => {
      const call = stub.Allocate({ namespace: 'default', multiClusterSetting: MC }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res)));
      call.on('status', (s) => (trailer = String(s.metadata.get(CLUSTER_TRAILER)[0] ?? '')));
    });
    assert.equal(r.source, b.address);
    assert.match(r.gameServerName, /^b-/);
    assert.equal(r.metadata.annotations['allocator-gateway.dev/cluster'], 'cluster-b');
    assert.equal(trailer, 'cluster-b');
  });

  test('an endpoint without a port is dialled on :443, as agones does (and reported so)', async (t) => {
    const a = await front(t, [policy('p443', { priority: 1, endpoints: ['127.0.0.1'] })], { multiCluster: { connectTimeoutMs: 200 } });
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 3_000 }));
    assert.equal(attemptsOf(err)[0]?.endpoint, '127.0.0.1:443');
  });

  test('a remote advertising no matching capacity is skipped without an Allocate call; nothing anywhere → fails fast', async (t) => {
    const a = await front(t, [policy('local', { priority: 1 }), policy('cluster-b', { priority: 2, endpoints: [b.address] })]);
    const before = served(b);
    const started = Date.now();
    const err = await caught<AllocatorError>(
      a.client().allocate({ namespace: 'default', multiClusterSetting: MC, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'nowhere' } }] }, { deadline: 5_000 }),
    );
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(err.reason, 'NO_GAME_SERVER');
    assert.deepEqual(attemptsOf(err).map((x) => x.outcome), ['no-capacity', 'skipped-no-capacity']);
    assert.equal(served(b), before, 'b received no Allocate');
    assert.ok(Date.now() - started < 1_000);
    // The same selectors matching fleet b are forwarded.
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'b' } }] }, { deadline: 5_000 });
    assert.equal(r.source, b.address);
  });

  test('remote no capacity (agones-allocator, RESOURCE_EXHAUSTED) → next tier at once; then a short negative cache', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs });
    const a = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint] }), policy('cluster-b', { priority: 2, endpoints: [b.address] })], { multiCluster: { noCapacityTtlMs: 2_000 } });
    const r1 = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    assert.equal(r1.source, b.address);
    assert.equal(d.calls.length, 1);
    const r2 = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    assert.equal(r2.source, b.address);
    assert.equal(d.calls.length, 1, 'skipped while the negative cache holds');
    // every field forwarded, with the remote namespace and deprecated twins
    const fwd = d.calls[0]!.request;
    assert.equal(fwd.namespace, 'default');
    assert.equal(fwd.multiClusterSetting?.enabled ?? false, false);
    assert.equal(fwd.gameServerSelectors?.[0]?.gameServerState ?? 'READY', 'READY');
    assert.ok(fwd.requiredGameServerSelector, 'required twin set');
    assert.ok(d.calls[0]!.headers['grpc-timeout'], 'caller deadline propagated');
  });

  test('agones-allocator served: source is its endpoint, not its "local"', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, gameServers: [{ name: 'gs-d1' }] });
    const a = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint] })]);
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC, metadata: { labels: { match: 'm1' } }, counters: { rooms: { action: { value: 'Increment' }, amount: { value: '1' } } } }, { deadline: 5_000 });
    assert.equal(r.gameServerName, 'gs-d1');
    assert.equal(r.source, d.endpoint);
    const fwd = d.calls[0]!.request;
    assert.deepEqual(fwd.metadata?.labels, { match: 'm1' });
    assert.deepEqual(fwd.metaPatch?.labels, { match: 'm1' });
    assert.equal(fwd.counters?.rooms?.action?.value, 'Increment');
  });

  test("a remote's raw 422 (agones validation) → REMOTE_REJECTED, not retried", async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, gameServers: [{ name: 'gs' }], mode: 'invalid' });
    const a = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint, d.endpoint.replace('127.0.0.1', 'localhost')] })]);
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(err.reason, 'REMOTE_REJECTED');
    // The remote's own validation text goes to the log; the caller gets the target and the code.
    assert.match(err.details, /remote target agones rejected the request as invalid \(422\)/);
    assert.doesNotMatch(err.details, /is invalid:/);
    assert.ok(a.logs.some((l) => l.target === 'agones' && /is invalid/.test(String(l.message))));
    assert.equal(d.calls.length, 1);
    assert.deepEqual(attemptsOf(err).map((x) => [x.outcome, x.code]), [['rejected', '422']]);
  });

  test('remote dead → breaker opens; later requests skip it within milliseconds', async (t) => {
    const dead = await deadEndpoint();
    const a = await front(t, [policy('dead', { priority: 1, endpoints: [dead] }), policy('cluster-b', { priority: 2, endpoints: [b.address] })], {
      multiCluster: { breaker: { volumeThreshold: 3, resetTimeoutMs: 30_000 } },
    });
    const client = a.client();
    for (let i = 0; i < 4; i++) assert.equal((await client.allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 })).source, b.address);
    // Failures are warnings; skips by the open breaker are routine (debug).
    const lines = () => a.logs.filter((l) => (l.msg === 'remote attempt failed' || l.msg === 'remote attempt') && l.endpoint === dead);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(lines().some((l) => l.outcome === 'breaker-open'), JSON.stringify(lines().map((l) => l.outcome)));
    const open = lines().filter((l) => l.outcome === 'breaker-open');
    for (const l of open) assert.ok((l.latencyMs as number) < 5, `skipped in ${l.latencyMs} ms`);
    assert.ok(lines().filter((l) => l.outcome === 'failed').every((l) => /No connection established|ECONNREFUSED/.test(String(l.message))));
  });

  test("remote black-holed (accepts TCP, never answers) → the caller's deadline holds", async (t) => {
    const hole = await blackHole(t);
    const a = await front(t, [policy('hole', { priority: 1, endpoints: [hole] })]);
    const started = Date.now();
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 400 }));
    const took = Date.now() - started;
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(took < 600, `answered after ${took} ms`);
  });

  test('black hole with a long deadline: detected within the connect timeout, then the next tier serves', async (t) => {
    const hole = await blackHole(t);
    const a = await front(t, [policy('hole', { priority: 1, endpoints: [hole] }), policy('cluster-b', { priority: 2, endpoints: [b.address] })], {
      multiCluster: { connectTimeoutMs: 500 },
    });
    const started = Date.now();
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 10_000 });
    const took = Date.now() - started;
    assert.equal(r.source, b.address);
    assert.ok(took >= 450 && took < 1_500, `took ${took} ms`);
  });

  test('a remote that accepted the call and never answered: ambiguous, not retried elsewhere, keyed or not', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, gameServers: [{ name: 'gs' }], mode: 'hang' });
    const a = await front(t, [policy('hang', { priority: 1, endpoints: [d.endpoint] }), policy('cluster-b', { priority: 2, endpoints: [b.address] })], {
      multiCluster: { attemptTimeoutMs: 300 },
    });
    const before = served(b);
    const snapshot = snapshotDouble(d);
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000, requestId: 'hang-unkeyed' }));
    assert.equal(err.reason, 'ALL_TARGETS_FAILED');
    assert.match(err.details, /may have allocated/);
    assert.equal(served(b), before);
    // agones-allocator does not honour idempotency keys: a key changes nothing.
    const keyed = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000, idempotencyKey: 'hang-1', requestId: 'hang-keyed' }));
    assert.equal(keyed.errorInfo?.metadata.ambiguous, 'true');
    assert.equal(served(b), before);
    const ledger = multiClusterLedger([{ name: 'hang', before: snapshot, after: snapshotDouble(d) }], [
      { requestId: 'hang-unkeyed', told: 'ambiguous', cluster: err.errorInfo?.metadata.target ?? '' },
      { requestId: 'hang-keyed', told: 'ambiguous', cluster: keyed.errorInfo?.metadata.target ?? '' },
    ]);
    assert.equal(ledger.doubles + ledger.orphansUnreported + ledger.problems.length, 0, ledgerText(ledger));
  });

  test('all fail → the most meaningful code and every target tried, in order', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs });
    const dead = await deadEndpoint();
    const a = await front(t, [policy('local', { priority: 1 }), policy('agones', { priority: 2, endpoints: [d.endpoint] }), policy('dead', { priority: 3, endpoints: [dead] })]);
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.equal(err.reason, 'ALL_TARGETS_FAILED');
    assert.deepEqual(attemptsOf(err).map((x) => `${x.target}:${x.outcome}`), ['local:no-capacity', 'agones:no-capacity', 'dead:failed']);
    assert.equal(attemptsOf(err)[1]!.endpoint, d.endpoint);
    // all full → RESOURCE_EXHAUSTED
    const a2 = await front(t, [policy('local', { priority: 1 }), policy('agones', { priority: 2, endpoints: [d.endpoint] })], { multiCluster: { noCapacityTtlMs: 0 } });
    const full = await caught<AllocatorError>(a2.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    assert.equal(full.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(full.reason, 'NO_GAME_SERVER');
  });

  test('configuration mistakes are reported by name, never silently skipped', async (t) => {
    const a = await front(t, [
      policy('zero-1', { priority: 1, weight: 0, endpoints: [b.address] }),
      policy('zero-2', { priority: 1, weight: 0, endpoints: [c.address] }),
      policy('bad-endpoint', { priority: 2, endpoints: ['http://x/y'] }),
      policy('no-secret', { priority: 3, endpoints: [b.address], secretName: 'absent' }),
    ]);
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    const got = attemptsOf(err);
    assert.deepEqual(got.map((x) => x.outcome), ['misconfigured', 'misconfigured', 'misconfigured', 'misconfigured']);
    assert.deepEqual(got.map((x) => x.target), ['zero-1', 'zero-2', 'bad-endpoint', 'no-secret']);
    // What is wrong is told to the operator (the log), not to the caller (attempt texts are not sent).
    assert.ok(got.every((x) => x.message === undefined));
    const problems = a.logs.filter((l) => l.msg === 'multi-cluster policy misconfigured; target not used').map((l) => String(l.problem));
    for (const re of [/zero-1: every policy of priority 1 has weight 0/, /bad-endpoint: bad allocationEndpoints "http:\/\/x\/y"/, /no-secret.*missing client certificate key pair/]) {
      assert.ok(problems.some((p) => re.test(p)), `${re} in ${JSON.stringify(problems)}`);
    }
    assert.ok(a.logs.some((l) => l.msg === 'multi-cluster policy misconfigured; target not used' && l.policy === 'zero-1'));
  });

  test('policies sharing a clusterName do not collapse; policySelector filters', async (t) => {
    const a = await front(t, [
      policy('b-1', { priority: 1, endpoints: [b.address], cluster: 'same', labels: { tier: 'x' } }),
      policy('c-1', { priority: 2, endpoints: [c.address], cluster: 'same', labels: { tier: 'x' } }),
      policy('other', { priority: 0, endpoints: [c.address], labels: { tier: 'y' } }),
    ]);
    // fleet c only exists behind c: b is tried (no match advertised → skipped), then c serves.
    const r = await a.client().allocate(
      { namespace: 'default', multiClusterSetting: { enabled: true, policySelector: { matchLabels: { tier: 'x' } } }, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'c' } }] },
      { deadline: 5_000 },
    );
    assert.equal(r.source, c.address);
    const none = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: { enabled: true, policySelector: { matchLabels: { tier: 'z' } } } }));
    assert.equal(none.reason, 'NO_POLICY');
  });

  test('multiClusterSetting.enabled false → local only, policies ignored', async (t) => {
    const a = await front(t, [policy('cluster-b', { priority: 1, endpoints: [b.address] })], { ready: 1 });
    assert.equal((await a.client().allocate({ namespace: 'default' })).source, 'local');
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default' }));
    assert.equal(err.reason, 'NO_GAME_SERVER');
  });
});

describe('idempotency keys', () => {
  test('a repeat on the same gateway returns the same local GameServer, allocated once', async (t) => {
    const a = await front(t, [policy('local', { priority: 1 })], { ready: 3 });
    const r1 = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { idempotencyKey: 'k-local' });
    const r2 = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { idempotencyKey: 'k-local' });
    assert.equal(r2.gameServerName, r1.gameServerName);
    assert.equal(a.store.list().filter((g) => g.state === 'Allocated').length, 1);
    // another caller identity with the same key is another request
    const other = certs.leaf('other-caller');
    const r3 = await a.client(other).allocate({ namespace: 'default', multiClusterSetting: MC }, { idempotencyKey: 'k-local' });
    assert.notEqual(r3.gameServerName, r1.gameServerName);
  });

  test('a repeat through another replica reaches the same remote GameServer (the key is forwarded), allocated once', async (t) => {
    const policies = [policy('cluster-c', { priority: 1, endpoints: [c.address] })];
    const [a1, a2] = await Promise.all([front(t, policies), front(t, policies)]);
    const req = { namespace: 'default', multiClusterSetting: MC, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'c' } }] };
    await new Promise((r) => setTimeout(r, 300));
    const readyBefore = await readyOn(c);
    const r1 = await a1.client().allocate(req, { idempotencyKey: 'match-77' });
    const r2 = await a2.client().allocate(req, { idempotencyKey: 'match-77' });
    const [r3, r4] = await Promise.all([a1.client().allocate(req, { idempotencyKey: 'match-78' }), a2.client().allocate(req, { idempotencyKey: 'match-78' })]);
    assert.equal(r2.gameServerName, r1.gameServerName);
    assert.equal(r4.gameServerName, r3.gameServerName);
    await new Promise((r) => setTimeout(r, 300)); // c recomputes its advertisement at most every ttl/4
    assert.equal(await readyOn(c), readyBefore - 2);
  });
});

/** Ready count of fleet c behind a child gateway, from its GetCapacity. */
async function readyOn(g: GatewayProcess): Promise<number> {
  const pool = new ChannelPool();
  try {
    const stub = pool.get(g.address, 'test', { cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), ca: readFileSync(certs.caFile), version: 'x' }, '');
    const res = await new Promise<any>((resolve, reject) =>
      stub.GetCapacity({ namespaces: ['default'] }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    return Number(res.namespaces.default.total.ready);
  } finally {
    pool.close();
  }
}

describe('route explain', () => {
  test('ExplainRoute lists targets in order with skip reasons, allocating nothing', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs });
    const a = await front(t, [policy('local', { priority: 1 }), policy('agones', { priority: 2, endpoints: [d.endpoint] }), policy('cluster-b', { priority: 3, endpoints: [b.address] })]);
    const pool = new ChannelPool();
    t.after(() => pool.close());
    const stub = pool.get(a.grpcAddress, 'test', { cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), ca: readFileSync(certs.caFile), version: 'x' }, '');
    const before = served(b);
    const res = await new Promise<any>((resolve, reject) =>
      stub.ExplainRoute(
        { request: { namespace: 'default', multiClusterSetting: MC, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'c' } }] } },
        new grpc.Metadata(),
        { deadline: Date.now() + 5_000 },
        (err, r) => (err ? reject(err) : resolve(r)),
      ),
    );
    assert.equal(res.multi_cluster, true);
    assert.deepEqual(res.steps.map((s: any) => `${s.policy}:${s.decision}`), ['local:skip', 'agones:try', 'cluster-b:skip']);
    assert.match(res.steps[1].reason, /does not advertise capacity/);
    assert.match(res.steps[2].reason, /advertises no GameServer matching/);
    assert.equal(d.calls.length, 0);
    assert.equal(served(b), before);
  });
});

/** An embedded cluster whose writes fail as a crashed API server's do: the outcome is unknown. */
class UnknownOutcomeStore extends MemoryStore {
  override async update(): Promise<never> {
    throw new AllocationError('NOT_READY', 'the API server went away during the write', { metadata: { ambiguous: 'true' } });
  }
}

describe('a local write with an unknown outcome', () => {
  test('without an idempotency key the route stops there: another cluster could allocate a second time', async (t) => {
    const dir = policyDir(t, certs, [policy('local', { priority: 1 }), policy('cluster-b', { priority: 2, endpoints: [b.address] })]);
    const a = await startGateway(t, {
      certs,
      store: new UnknownOutcomeStore(parseFleetFile(simpleFleet('a', 3))),
      config: { multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir } },
    });
    const before = served(b);
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    assert.equal(err.codeName, 'UNAVAILABLE');
    assert.equal(err.reason, 'NOT_READY');
    assert.deepEqual(attemptsOf(err).map((x) => `${x.target}:${x.outcome}`), ['local:ambiguous']);
    assert.equal(served(b), before, 'the remote must not be called');
    // With a key a repeat is safe, so the route may go on to the next cluster.
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000, idempotencyKey: 'unknown-outcome-1' });
    assert.equal(r.source, b.address);
  });
});
