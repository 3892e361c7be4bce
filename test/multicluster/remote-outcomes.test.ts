// What callers are told about remote outcomes, on real servers with real mTLS: a front gateway
// (in process) forwarding to gateways (child processes) and to the agones-allocator stand-in.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import { readFileSync } from 'node:fs';
import { AllocatorError, createAllocatorClient, type AllocatorClient } from '../../src/client/index.ts';
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { caught, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { simpleFleet, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { parseFleetFile } from '../../src/cluster/memory/fleet-file.ts';
import { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import { addSecret, attemptsOf, policy, policyDir } from './fixtures.ts';
import { startAgonesAllocatorDouble, type AgonesAllocatorDouble, type DoubleMode } from '../helpers/agones-allocator-double.ts';
import { ledgerText, multiClusterLedger, REQUEST_ID_ANNOTATION, snapshotDouble, snapshotMemory, type Told } from './ledger.ts';

const MC = { enabled: true };
const certs: TestCerts = devCerts({ after });

/** A front gateway with `ready` local GameServers (fleet "a") and these policies. */
async function front(t: TestContext, policies: object[], o: { ready?: number; multiCluster?: Record<string, unknown> } = {}): Promise<TestGateway> {
  const dir = policyDir(t, certs, policies);
  return await startGateway(t, {
    certs,
    gameServers: parseFleetFile(simpleFleet('a', o.ready ?? 0)),
    config: { multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, ...o.multiCluster }, log: { level: 'debug' } },
  });
}

describe("a remote gateway's answers are classified from its ErrorInfo", () => {
  test('RATE_LIMITED (a definitive refusal) falls through to the next tier, without a key', async (t) => {
    const [limited, spare] = (await Promise.all([
      startGatewayProcess(t, { certs, name: 'limited', fleet: simpleFleet('l', 5), config: { admission: { perClientRps: 0.001, perClientBurst: 1 } } }),
      startGatewayProcess(t, { certs, name: 'spare', fleet: simpleFleet('s', 5) }),
    ])) as [GatewayProcess, GatewayProcess];
    const a = await front(t, [policy('limited', { priority: 1, endpoints: [limited.address] }), policy('spare', { priority: 2, endpoints: [spare.address] })]);
    // Its one token goes to the first call it sees (the front's GetCapacity or Allocate): from then on it refuses.
    for (let i = 0; i < 2; i++) await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    assert.equal(r.source, spare.address);
    assert.ok(limited.logs.some((l) => l.outcome === 'RATE_LIMITED'), 'limited refused an Allocate');
    const line = a.logs.find((l) => l.target === 'limited' && l.outcome === 'refused');
    assert.ok(line, 'the refusal is logged as refused');
    assert.equal(line.code, 'UNAVAILABLE');
  });
});

/** A client of the stand-in itself. */
function direct(d: AgonesAllocatorDouble): AllocatorClient {
  const c = createAllocatorClient({ address: d.endpoint, ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), serverName: 'localhost' });
  after(() => c.close());
  return c;
}

/** A caller's answer as the ledger records it. */
function toldOf(requestId: string, r: { ok: true; gameServerName: string; cluster: string } | { ok: false; metadata: Readonly<Record<string, string>> }): Told {
  if (r.ok) return { requestId, told: 'allocated', cluster: r.cluster, gameServer: r.gameServerName };
  if (r.metadata.ambiguous === 'true') return { requestId, told: 'ambiguous', cluster: r.metadata.target ?? '' };
  return { requestId, told: 'failed' };
}

describe('a remote that may have allocated is reported as ambiguous, and nothing is allocated elsewhere', () => {
  // The stand-in at agones' default 500 ms batch window; a spare gateway (in process, so the ledger can read its cluster) behind it.
  const cases: { name: string; mode: DoubleMode; key: string | null; door: 'rest' | 'grpc'; deadlineMs: number; reason: string }[] = [
    { name: 'deadline shorter than the batch window, unkeyed', mode: 'normal', key: null, door: 'rest', deadlineMs: 300, reason: 'DEADLINE_EXCEEDED' },
    { name: 'deadline shorter than the batch window, keyed', mode: 'normal', key: 'k-window', door: 'rest', deadlineMs: 300, reason: 'DEADLINE_EXCEEDED' },
    { name: 'reply lost after allocate (stream reset), unkeyed', mode: 'allocate-then-reset', key: null, door: 'grpc', deadlineMs: 5_000, reason: 'ALL_TARGETS_FAILED' },
    { name: 'reply lost after allocate (stream reset), keyed', mode: 'allocate-then-reset', key: 'k-reset', door: 'grpc', deadlineMs: 5_000, reason: 'ALL_TARGETS_FAILED' },
    { name: 'reply never sent after allocate (hang), unkeyed', mode: 'allocate-then-hang', key: null, door: 'rest', deadlineMs: 1_000, reason: 'DEADLINE_EXCEEDED' },
    { name: 'reply never sent after allocate (hang), keyed', mode: 'allocate-then-hang', key: 'k-hang', door: 'rest', deadlineMs: 1_000, reason: 'DEADLINE_EXCEEDED' },
  ];
  for (const c of cases) {
    test(c.name, async (t) => {
      const d: AgonesAllocatorDouble = await startAgonesAllocatorDouble(t, { certs, mode: c.mode, gameServers: [{ name: 'd-0' }, { name: 'd-1' }] });
      const spare = await startGateway(t, { certs, gameServers: parseFleetFile(simpleFleet('s', 3)) });
      const a = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint] }), policy('spare', { priority: 2, endpoints: [spare.grpcAddress] })]);
      const before = [snapshotDouble(d), snapshotMemory(spare.store)] as const;
      const requestId = `req-${c.name.replace(/[^a-z]+/g, '-')}`;
      // Right after the stand-in served a batch its loop sleeps a whole window: the call below waits ~500 ms.
      if (c.mode === 'normal') await caught(direct(d).allocate({ namespace: 'nowhere' }, { deadline: 2_000 }));
      let metadata: Readonly<Record<string, string>>;
      let reason: string | null;
      if (c.door === 'rest') {
        const r = await a.rest({ namespace: 'default', multiClusterSetting: MC }, { headers: { 'grpc-timeout': `${c.deadlineMs}m`, 'x-request-id': requestId, ...(c.key ? { 'idempotency-key': c.key } : {}) } });
        assert.equal(r.status, 504, JSON.stringify(r.body));
        metadata = r.body.details[0].metadata;
        reason = r.body.details[0].reason;
      } else {
        const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: c.deadlineMs, requestId, ...(c.key ? { idempotencyKey: c.key } : {}) }));
        assert.ok(err instanceof AllocatorError, String(err));
        metadata = err.errorInfo?.metadata ?? {};
        reason = err.reason;
        assert.deepEqual(attemptsOf(err).map((x) => `${x.target}:${x.outcome}`), ['agones:ambiguous']);
      }
      assert.equal(reason, c.reason);
      assert.equal(metadata.ambiguous, 'true');
      assert.equal(metadata.target, 'agones');
      assert.equal(metadata.endpoint, d.endpoint);
      assert.equal(metadata.requestId, requestId);
      const audit = a.logs.find((l) => l.audit === true && l.reqId === requestId);
      assert.equal(audit?.ambiguous, true, JSON.stringify(audit));
      assert.equal(audit?.target, 'agones');
      assert.equal(audit?.requestId, requestId);
      // The stand-in allocates after the caller has gone: wait for its batch loop.
      await d.drained();
      await d.drained();
      const ledger = multiClusterLedger(
        [{ name: 'agones', before: before[0], after: snapshotDouble(d) }, { name: 'spare', before: before[1], after: snapshotMemory(spare.store) }],
        [toldOf(requestId, { ok: false, metadata })],
      );
      assert.equal(ledger.doubles, 0, ledgerText(ledger));
      assert.equal(ledger.orphansUnreported, 0, ledgerText(ledger));
      assert.equal(ledger.orphansReported, 1, ledgerText(ledger));
      assert.equal(ledger.rows[0]!.requestId, requestId);
      assert.equal(d.gameServers.find((g) => g.state === 'Allocated')?.annotations?.[REQUEST_ID_ANNOTATION], requestId);
    });
  }
});

describe('the request identifier', () => {
  test('is forwarded in metadata and written on the remote GameServer; one set by a caller or peer is kept as sent', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, batchWaitMs: 20, gameServers: [{ name: 'id-0' }, { name: 'id-1' }] });
    const a = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint] })]);
    const r1 = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000, requestId: 'from-header-1' });
    assert.equal(d.gameServers.find((g) => g.name === r1.gameServerName)?.annotations?.[REQUEST_ID_ANNOTATION], 'from-header-1');
    assert.equal(d.calls[0]!.headers['x-request-id'], 'from-header-1');
    const r2 = await a.client().allocate(
      { namespace: 'default', multiClusterSetting: MC, metadata: { annotations: { [REQUEST_ID_ANNOTATION]: 'set-upstream-7' } } },
      { deadline: 5_000, requestId: 'from-header-2' },
    );
    assert.equal(d.gameServers.find((g) => g.name === r2.gameServerName)?.annotations?.[REQUEST_ID_ANNOTATION], 'set-upstream-7');
  });

  test('is no part of the idempotency fingerprint: a keyed retry with a new request identifier is the same request', async (t) => {
    const g = await startGateway(t, { certs, gameServers: parseFleetFile(simpleFleet('k', 3)) });
    const req = (id: string) => ({ namespace: 'default', metadata: { annotations: { [REQUEST_ID_ANNOTATION]: id } } });
    const r1 = await g.client().allocate(req('attempt-1'), { deadline: 5_000, idempotencyKey: 'retry-1', requestId: 'h-1' });
    const r2 = await g.client().allocate(req('attempt-2'), { deadline: 5_000, idempotencyKey: 'retry-1', requestId: 'h-2' });
    assert.equal(r2.gameServerName, r1.gameServerName);
    assert.equal(g.store.list().filter((x) => x.state === 'Allocated').length, 1);
  });
});

/** An embedded cluster whose next write takes `delayNextMs` and then commits, whoever is still waiting. */
class SlowWriteStore extends MemoryStore {
  delayNextMs = 0;
  override async update(next: GameServer, signal: AbortSignal): Promise<GameServer> {
    const d = this.delayNextMs;
    this.delayNextMs = 0;
    if (d > 0) await new Promise((r) => setTimeout(r, d));
    return await super.update(next, signal);
  }
}

describe('avoiding orphans', () => {
  test("an endpoint whose observed latency exceeds what is left of the deadline is not started; the next tier serves; the attempts list says so", async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, gameServers: Array.from({ length: 8 }, (_, i) => ({ name: `slow-${i}` })) });
    const spare = await startGateway(t, { certs, gameServers: parseFleetFile(simpleFleet('s', 3)) });
    const a = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint] }), policy('spare', { priority: 2, endpoints: [spare.grpcAddress] })]);
    const alone = await front(t, [policy('agones', { priority: 1, endpoints: [d.endpoint] })]);
    // Learn the stand-in's latency: sequential calls each wait about one 500 ms batch window.
    for (let i = 0; i < 3; i++) await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    for (let i = 0; i < 3; i++) await alone.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    const before = [snapshotDouble(d), snapshotMemory(spare.store)] as const;
    const calls = d.calls.length;
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 300, requestId: 'short-1' });
    assert.equal(r.source, spare.grpcAddress);
    const skip = a.logs.find((l) => l.reqId === 'short-1' && l.outcome === 'too-slow');
    assert.ok(skip, 'the skip is logged');
    const err = await caught<AllocatorError>(alone.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 300, requestId: 'short-2' }));
    assert.equal(err.reason, 'DEADLINE_EXCEEDED');
    const [attempt] = attemptsOf(err);
    assert.equal(attempt?.outcome, 'too-slow');
    // The figures are for the operator: in the log line, not sent to the caller.
    const line = alone.logs.find((l) => l.reqId === 'short-2' && l.outcome === 'too-slow');
    assert.match(String(line?.message), /answers in about \d+ ms \(recent calls\); \d+ ms of the caller's deadline were left/);
    assert.equal(d.calls.length, calls, 'no Allocate reached the stand-in');
    await d.drained();
    const ledger = multiClusterLedger(
      [{ name: 'agones', before: before[0], after: snapshotDouble(d) }, { name: 'spare', before: before[1], after: snapshotMemory(spare.store) }],
      [{ requestId: 'short-1', told: 'allocated', cluster: 'spare', gameServer: r.gameServerName }, { requestId: 'short-2', told: 'failed' }],
    );
    assert.equal(ledger.doubles + ledger.orphansReported + ledger.orphansUnreported, 0, ledgerText(ledger));
  });

  test('after a lost reply from a gateway that honours keys, the keyed repeat goes to that gateway and returns what it allocated; unkeyed stops', async (t) => {
    const slow = new SlowWriteStore(parseFleetFile(simpleFleet('b', 4)));
    const b = await startGateway(t, { certs, store: slow });
    const c = await startGateway(t, { certs, gameServers: parseFleetFile(simpleFleet('c', 4)) });
    const a = await front(t, [policy('b', { priority: 1, endpoints: [b.grpcAddress] }), policy('c', { priority: 2, endpoints: [c.grpcAddress] })], {
      multiCluster: { attemptTimeoutMs: 250 },
    });
    await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }); // learns b's GetCapacity
    const before = [snapshotMemory(slow), snapshotMemory(c.store)] as const;
    const told: Told[] = [];
    // Keyed: b's write takes 400 ms, past the 250 ms attempt; the repeat to b returns that write's GameServer.
    slow.delayNextMs = 400;
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000, idempotencyKey: 'lost-1', requestId: 'keyed-lost' });
    assert.equal(r.source, b.grpcAddress, JSON.stringify(a.logs.filter((l) => l.reqId === 'keyed-lost')));
    told.push({ requestId: 'keyed-lost', told: 'allocated', cluster: 'b', gameServer: r.gameServerName });
    const outcomes = a.logs.filter((l) => l.reqId === 'keyed-lost' && (l.msg === 'remote attempt' || l.msg === 'remote attempt failed')).map((l) => `${l.target}:${l.outcome}`);
    assert.deepEqual(outcomes, ['b:ambiguous', 'b:allocated']);
    // Unkeyed: the same loss ends the route, reported.
    slow.delayNextMs = 400;
    const err = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000, requestId: 'unkeyed-lost' }));
    assert.equal(err.errorInfo?.metadata.ambiguous, 'true');
    assert.equal(err.errorInfo?.metadata.target, 'b');
    told.push(toldOf('unkeyed-lost', { ok: false, metadata: err.errorInfo!.metadata }));
    await new Promise((res) => setTimeout(res, 500)); // b's slow write commits
    const ledger = multiClusterLedger(
      [{ name: 'b', before: before[0], after: snapshotMemory(slow) }, { name: 'c', before: before[1], after: snapshotMemory(c.store) }],
      told,
    );
    assert.equal(ledger.doubles, 0, ledgerText(ledger));
    assert.equal(ledger.orphansUnreported, 0, ledgerText(ledger));
    // b (a gateway) undoes a write whose caller left, so the unkeyed loss leaves at most a reported orphan.
    assert.ok(ledger.orphansReported <= 1, ledgerText(ledger));
    assert.deepEqual(ledger.rows.filter((x) => x.verdict === 'told').map((x) => `${x.cluster}/${x.gameServer}`), [`b/${r.gameServerName}`]);
    assert.equal(ledger.rows.filter((x) => x.cluster === 'c').length, 0, 'c never allocated');
  });
});

describe('channels, breakers and capacity per (endpoint, client credentials)', () => {
  test('two namespaces, one endpoint, different Secrets: one channel each, no rebuilds, independent breakers (one opened by TLS failures says so)', async (t) => {
    const foreign = devCerts(t);
    const d = await startAgonesAllocatorDouble(t, { certs, batchWaitMs: 20, gameServers: Array.from({ length: 20 }, (_, i) => ({ name: `p-${i}` })) });
    const policies = [
      policy('to-d', { priority: 1, endpoints: [d.endpoint], policyNamespace: 'tenant-a', secretName: 'sec-a' }),
      policy('to-d', { priority: 1, endpoints: [d.endpoint], policyNamespace: 'tenant-b', secretName: 'sec-b' }),
      policy('to-d', { priority: 1, endpoints: [d.endpoint], policyNamespace: 'tenant-c', secretName: 'sec-c' }),
    ];
    const dir = policyDir(t, certs, policies);
    addSecret(dir.secretsDir, 'sec-a', certs.client, certs.caFile);
    addSecret(dir.secretsDir, 'sec-b', certs.leaf('tenant-b-client'), certs.caFile);
    // tenant-c's client certificate comes from a CA the remote does not trust: its TLS handshakes fail.
    addSecret(dir.secretsDir, 'sec-c', foreign.client, certs.caFile);
    const a = await startGateway(t, {
      certs,
      config: {
        multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 }, connectTimeoutMs: 300 },
        log: { level: 'debug' },
      },
    });
    const before = snapshotDouble(d);
    const told: Told[] = [];
    for (let i = 0; i < 6; i++) {
      const ns = i % 2 === 0 ? 'tenant-a' : 'tenant-b';
      const r = await a.client().allocate({ namespace: ns, multiClusterSetting: MC }, { deadline: 5_000, requestId: `cred-${i}` });
      assert.equal(r.source, d.endpoint);
      told.push({ requestId: `cred-${i}`, told: 'allocated', cluster: 'to-d', gameServer: r.gameServerName });
    }
    assert.equal(a.logs.filter((l) => l.msg === 'client certificate or CA changed; remote channel rebuilt').length, 0, 'no channel rebuilt');
    assert.equal(d.handshakes, 2, 'one TLS connection per credentials');
    // tenant-c fails until its breaker opens...
    let last: AllocatorError | undefined;
    for (let i = 0; i < 6 && attemptsOf(last ?? { errorInfo: null })[0]?.outcome !== 'breaker-open'; i++) {
      last = await caught<AllocatorError>(a.client().allocate({ namespace: 'tenant-c', multiClusterSetting: MC }, { deadline: 5_000 }));
    }
    const open = attemptsOf(last!)[0];
    assert.equal(open?.outcome, 'breaker-open');
    assert.equal((open as { cause?: string }).cause, 'tls');
    assert.ok(a.logs.some((l) => l.namespace === 'default' && l.tls === 'client certificate refused'), 'the handshake failure is logged with its cause');
    // ...and tenant-a and tenant-b are still served through theirs.
    for (const ns of ['tenant-a', 'tenant-b']) {
      const r = await a.client().allocate({ namespace: ns, multiClusterSetting: MC }, { deadline: 5_000, requestId: `cred-${ns}` });
      assert.equal(r.source, d.endpoint);
      told.push({ requestId: `cred-${ns}`, told: 'allocated', cluster: 'to-d', gameServer: r.gameServerName });
    }
    await d.drained();
    const ledger = multiClusterLedger([{ name: 'to-d', before, after: snapshotDouble(d) }], told);
    assert.equal(ledger.rows.length, 8, ledgerText(ledger));
    assert.equal(ledger.doubles + ledger.orphansReported + ledger.orphansUnreported + ledger.problems.length, 0, ledgerText(ledger));
  });
});
