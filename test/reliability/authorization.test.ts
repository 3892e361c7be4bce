// Per-client authorization from the verified certificate, audited refusals, and no key material
// in any log line.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { AllocatorError } from '../../src/client/index.ts';
import { Authorizer } from '../../src/server/authorization.ts';
import { AllocationError } from '../../src/allocation/errors.ts';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { caught, startGateway } from '../helpers/gateway.ts';
import { capacityOf } from './load.ts';

const DEV = 'uri:spiffe://allocator-gateway/test-client';

describe('Authorizer (unit)', () => {
  const clients = { [DEV]: { namespaces: ['default'], multiCluster: false }, 'cn:admin': { namespaces: ['*'], multiCluster: true } };
  const verdict = (a: Authorizer, id: string | null, ns: string, mc = false) => {
    try {
      a.check(id, ns, mc);
      return 'allowed';
    } catch (err) {
      return (err as AllocationError).reason;
    }
  };
  const cases: [mode: 'open' | 'enforce', id: string | null, ns: string, mc: boolean, want: string][] = [
    ['open', 'stranger', 'anything', true, 'allowed'],
    ['open', null, 'default', false, 'allowed'],
    ['open', DEV, 'default', false, 'allowed'],
    ['open', DEV, 'other', false, 'PERMISSION_DENIED'],
    ['open', DEV, 'default', true, 'PERMISSION_DENIED'],
    ['enforce', 'stranger', 'default', false, 'PERMISSION_DENIED'],
    ['enforce', null, 'default', false, 'PERMISSION_DENIED'],
    ['enforce', DEV, 'default', false, 'allowed'],
    ['enforce', 'cn:admin', 'x', true, 'allowed'],
    ['enforce', 'admin', 'x', true, 'PERMISSION_DENIED'],
    ['enforce', 'hasOwnProperty', 'default', false, 'PERMISSION_DENIED'],
  ];
  for (const [mode, id, ns, mc, want] of cases) {
    test(`${mode}: ${id} in ${ns}${mc ? ' multi-cluster' : ''} → ${want}`, () => {
      assert.equal(verdict(new Authorizer({ mode, clients }), id, ns, mc), want);
    });
  }
});

describe('authorization at both doors (enforce)', async () => {
  test('listed identity allowed in its namespace, refused elsewhere and for forwarding; unknown identity refused; all audited', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, {
      certs,
      gameServers: [...readyPool(10), ...readyPool(10, { namespace: 'other', prefix: 'o' })],
      config: { authorization: { mode: 'enforce', clients: { [DEV]: { namespaces: ['default'] } } } },
    });
    const dev = gw.client();
    assert.equal((await dev.allocate({ namespace: 'default' }, { deadline: 3_000 })).source, 'local');
    const other = await caught<AllocatorError>(dev.allocate({ namespace: 'other' }, { deadline: 3_000 }));
    assert.equal(other.codeName, 'PERMISSION_DENIED');
    assert.equal(other.reason, 'PERMISSION_DENIED');
    assert.match(other.details, /uri:spiffe:\/\/allocator-gateway\/test-client may not allocate in namespace other/);
    const mc = await caught<AllocatorError>(dev.allocate({ namespace: 'default', multiClusterSetting: { enabled: true } }, { deadline: 3_000 }));
    assert.equal(mc.codeName, 'PERMISSION_DENIED');
    const stranger = gw.client(certs.leaf('stranger', { san: 'URI:spiffe://elsewhere/stranger' }));
    const s = await caught<AllocatorError>(stranger.allocate({ namespace: 'default' }, { deadline: 3_000 }));
    assert.equal(s.codeName, 'PERMISSION_DENIED');
    const rest = await gw.rest({ namespace: 'other' });
    assert.equal(rest.status, 403);
    assert.equal(rest.body.details[0].reason, 'PERMISSION_DENIED');
    assert.equal(rest.body.details[0].metadata.identity, DEV);

    const denied = gw.logs.filter((l) => l.audit === true && l.outcome === 'PERMISSION_DENIED');
    assert.equal(denied.length, 4);
    assert.ok(denied.some((l) => l.identity === 'uri:spiffe://elsewhere/stranger'));
    const allocated = gw.logs.filter((l) => l.audit === true && l.outcome === 'OK');
    assert.equal(allocated.length, 1);
    assert.deepEqual(
      Object.keys(allocated[0]!).filter((k) => ['identity', 'namespace', 'gameServer', 'cluster'].includes(k)).sort(),
      ['cluster', 'gameServer', 'identity', 'namespace'],
    );
    // Nothing allocated in 'other', one in 'default'.
    assert.equal(gw.store.list().filter((g) => g.state === 'Allocated').length, 1);
  });

  test('enforce: unlisted identities are refused by GatewayService too; listed ones are served', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: readyPool(2), config: { authorization: { mode: 'enforce', clients: { [DEV]: { namespaces: ['default'] } } } } });
    const stranger = certs.leaf('stranger', { san: 'URI:spiffe://elsewhere/stranger' });
    const err = await capacityOf(gw.grpcAddress, { caFile: certs.caFile, clientCertFile: stranger.certFile, clientKeyFile: stranger.keyFile }, 'default').catch((e: { code: number; details: string }) => e);
    assert.equal((err as { code: number }).code, 7, JSON.stringify(err)); // PERMISSION_DENIED
    assert.equal((await capacityOf(gw.grpcAddress, certs, 'default')).ready, 2);
  });

  test('UNAUTHENTICATED (no clientAuth usage) is audited too; no key material is ever logged', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: readyPool(5), config: { log: { level: 'debug' } } });
    const noEku = certs.leaf('no-eku', { eku: null });
    await caught(gw.client(noEku).allocate({ namespace: 'default' }, { deadline: 3_000 }));
    await gw.rest({ namespace: 'default' }, { pair: noEku });
    await gw.client().allocate({ namespace: 'default' }, { deadline: 3_000 });
    await gw.rest({ namespace: 'bad ns' });
    const unauth = gw.logs.filter((l) => l.audit === true && l.outcome === 'UNAUTHENTICATED');
    assert.equal(unauth.length, 2);
    assert.ok(unauth.every((l) => l.identity === 'dns:no-eku'));
    const text = gw.logs.map((l) => JSON.stringify(l)).join('\n');
    assert.doesNotMatch(text, /PRIVATE KEY|BEGIN CERTIFICATE/);
    for (const file of [certs.serverKeyFile, certs.clientKeyFile, noEku.keyFile, certs.caKeyFile]) {
      const body = readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
      for (const line of body) assert.ok(!text.includes(line.slice(0, 24)), `key material of ${file} in the log`);
    }
  });
});
