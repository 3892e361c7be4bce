// Issue 12 items 3 and 4: GatewayService gets the same bounded decoding, bounded caches and
// per-namespace authorization as Allocate; every namespace the gateway acts in for a caller is
// authorized for that caller; certificate identities of different kinds do not collide.
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, test, type TestContext } from 'node:test';
import type { AllocatorError } from '../../src/client/index.ts';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { caught, startGateway } from '../helpers/gateway.ts';
import { gatewayServiceClient } from '../helpers/gateway-service-client.ts';
import { policy, policyDir } from '../multicluster/fixtures.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const EU = 'uri:spiffe://tenants/game-eu';
const pools = () => [...readyPool(4, { namespace: 'game-eu', prefix: 'eu' }), ...readyPool(4, { namespace: 'game-us', prefix: 'us' })];
const grants = { [EU]: { namespaces: ['game-eu'], multiCluster: true } };

/** Varint-prefixed field `n` of wire type 2. */
function lengthDelimited(field: number, body: Buffer): Buffer {
  const len: number[] = [];
  let v = body.length;
  while (v > 127) {
    len.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  len.push(v);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), body]);
}

describe('GatewayService decoding and caches are bounded', () => {
  test('ExplainRoute with ~2 million empty selectors is refused by the bounded decoder, without seconds of CPU', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: readyPool(2) });
    const client = gatewayServiceClient(gw.grpcAddress, certs);
    t.after(() => client.close());
    // AllocationRequest.gameServerSelectors = 8: 2,000,000 empty selectors (tag 0x42, length 0).
    const selectors = Buffer.alloc(2_000_000 * 2);
    for (let i = 0; i < selectors.length; i += 2) selectors[i] = 0x42;
    const bytes = lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from('default')), selectors]));
    assert.ok(bytes.length < 4 * 1024 * 1024);
    // The gateway runs in this process: its CPU time is this process's (the client sends prebuilt bytes).
    const before = process.cpuUsage();
    const heapBefore = process.memoryUsage().heapUsed;
    const r = await client.raw('ExplainRoute', bytes, 60_000);
    const cpuMs = (() => {
      const d = process.cpuUsage(before);
      return (d.user + d.system) / 1000;
    })();
    assert.equal(r.code, 'INVALID_ARGUMENT', r.details);
    assert.match(r.details, /gameServerSelectors/);
    // Unbounded decoding took ~14 s of CPU and ~1 GB of heap; bounded, a pre-scan costs milliseconds.
    assert.ok(cpuMs < 2_000, `ExplainRoute decode cost ${cpuMs.toFixed(0)} ms of CPU`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 200 * 1024 * 1024, 'heap grew by hundreds of MiB');
    // Malformed bytes are INVALID_ARGUMENT too, never INTERNAL.
    assert.equal((await client.raw('ExplainRoute', Buffer.from([0x0a, 0xff, 0xff]))).code, 'INVALID_ARGUMENT');
    assert.equal((await client.raw('GetCapacity', Buffer.from([0x0a, 0xff, 0xff]))).code, 'INVALID_ARGUMENT');
  });

  test('GetCapacity neither echoes nor caches namespace names a caller makes up', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: readyPool(2) });
    const client = gatewayServiceClient(gw.grpcAddress, certs);
    t.after(() => client.close());
    const junk = (i: number, j: number) => `${String(i).padStart(3, '0')}-${String(j).padStart(3, '0')}-${'x'.repeat(50_000)}`;
    const tooLong = await client.getCapacity({ namespaces: [junk(0, 0)] });
    assert.equal(tooLong.code, 'INVALID_ARGUMENT', tooLong.details);
    // Valid names that the gateway does not serve are left out of the answer.
    const unknown = await client.getCapacity({ namespaces: ['default', 'no-such-namespace'] });
    assert.equal(unknown.code, 'OK');
    assert.deepEqual(Object.keys(unknown.response.namespaces).sort(), ['default']);
    // 15 calls × 64 distinct 50 KB names: a cache keyed by them would hold ~48 MB.
    const heapBefore = heapAfterGc();
    for (let i = 0; i < 15; i++) await client.getCapacity({ namespaces: Array.from({ length: 64 }, (_, j) => junk(i + 1, j)) });
    const grownMiB = (heapAfterGc() - heapBefore) / 1024 / 1024;
    assert.ok(grownMiB < 16, `heap grew by ${grownMiB.toFixed(1)} MiB after junk GetCapacity calls`);
  });
});

/** A gateway in enforce mode over both tenants' pools with these policies, and the game-eu tenant's certificate. */
async function tenants(t: TestContext, policies: object[]) {
  const certs = devCerts(t);
  const eu = certs.leaf('eu', { san: 'URI:spiffe://tenants/game-eu' });
  const dir = policyDir(t, certs, policies);
  const gw = await startGateway(t, {
    certs,
    gameServers: pools(),
    config: { authorization: { mode: 'enforce', clients: grants }, multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir } },
  });
  return { certs, eu, gw };
}

describe('authorization covers every namespace the gateway acts in (enforce)', () => {
  test('GetCapacity and ExplainRoute answer only for granted namespaces', async (t) => {
    const { certs, eu, gw } = await tenants(t, [policy('local', { priority: 1, policyNamespace: 'game-us', namespace: 'game-us' })]);
    const client = gatewayServiceClient(gw.grpcAddress, certs, eu);
    t.after(() => client.close());
    const own = await client.getCapacity({ namespaces: ['game-eu'] });
    assert.equal(own.code, 'OK', own.details);
    assert.equal(Number(own.response.namespaces['game-eu'].total.ready), 4);
    assert.equal((await client.getCapacity({ namespaces: ['game-us'] })).code, 'PERMISSION_DENIED');
    const all = await client.getCapacity({});
    assert.equal(all.code, 'OK');
    assert.deepEqual(Object.keys(all.response.namespaces), ['game-eu'], 'only granted namespaces are listed');
    const explain = await client.explainRoute({ request: { namespace: 'game-us', multiClusterSetting: { enabled: true } } });
    assert.equal(explain.code, 'PERMISSION_DENIED', JSON.stringify(explain.response ?? explain.details));
    assert.equal((await client.explainRoute({ request: { namespace: 'game-eu' } })).code, 'OK');
  });

  test('a policy whose connectionInfo.namespace the caller may not use is not followed', async (t) => {
    // A policy in game-eu (the caller's namespace) that sends its requests to game-us.
    const { eu, gw } = await tenants(t, [policy('to-us', { priority: 1, policyNamespace: 'game-eu', namespace: 'game-us' })]);
    const err = await caught<AllocatorError>(gw.client(eu).allocate({ namespace: 'game-eu', multiClusterSetting: { enabled: true } }, { deadline: 5_000 }));
    assert.equal(err.codeName, 'PERMISSION_DENIED', err.details);
    const attempts = JSON.parse(err.errorInfo?.metadata.attempts ?? '[]') as { outcome: string }[];
    assert.deepEqual(attempts.map((a) => a.outcome), ['forbidden']);
    assert.equal(gw.store.list().filter((g) => g.namespace === 'game-us' && g.state === 'Allocated').length, 0, 'nothing allocated in game-us');
    // Its own namespace still works without multi-cluster.
    assert.match((await gw.client(eu).allocate({ namespace: 'game-eu' }, { deadline: 5_000 })).gameServerName, /^eu-/);
  });

  test('identities of different kinds (URI, DNS, CN) do not collide in the grants', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: pools(), config: { authorization: { mode: 'enforce', clients: grants } } });
    const real = certs.leaf('real', { san: 'URI:spiffe://tenants/game-eu' });
    // Same text as the granted identity, but in the subject CN of a certificate without URI/DNS SANs.
    const cnTwin = certs.leaf('cn-twin', { cn: 'uri:spiffe://tenants/game-eu', san: 'email:twin@example.com' });
    const cnTwinBare = certs.leaf('cn-twin-bare', { cn: 'spiffe://tenants/game-eu', san: 'email:twin@example.com' });
    const dnsTwin = certs.leaf('dns-twin', { san: 'DNS:game-eu.tenants' });
    assert.match((await gw.client(real).allocate({ namespace: 'game-eu' }, { deadline: 5_000 })).gameServerName, /^eu-/);
    for (const pair of [cnTwin, cnTwinBare, dnsTwin]) {
      const err = await caught<AllocatorError>(gw.client(pair).allocate({ namespace: 'game-eu' }, { deadline: 5_000 }));
      assert.equal(err.codeName, 'PERMISSION_DENIED');
    }
    const denied = gw.logs.filter((l) => l.audit === true && l.outcome === 'PERMISSION_DENIED').map((l) => l.identity);
    assert.deepEqual(denied, ['cn:uri:spiffe://tenants/game-eu', 'cn:spiffe://tenants/game-eu', 'dns:game-eu.tenants']);
  });
});
