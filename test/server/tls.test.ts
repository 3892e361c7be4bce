// mTLS at both doors: who is refused, and certificates rotated without a restart.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { AllocatorError } from '../../src/client/index.ts';
import { devCerts, makeCerts, type Pair, type TestCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { caught, startGateway, waitFor, type TestGateway } from '../helpers/gateway.ts';

/** Serial number of the certificate a listener presents now (new connection each time). */
function presentedSerial(port: number, ca: Buffer, pair: Pair, alpn: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: readFileSync(pair.certFile), key: readFileSync(pair.keyFile), ALPNProtocols: alpn }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on('error', reject);
  });
}

function serialOf(file: string): string {
  return execFileSync('openssl', ['x509', '-in', file, '-noout', '-serial']).toString().trim().split('=')[1]!.toUpperCase();
}

describe('client certificates', async () => {
  const certs = devCerts({ after });
  const foreign = makeCerts(`${certs.dir}/foreign`, 'intruder');
  const gw: TestGateway = await startGateway({ after }, { certs, gameServers: readyPool(50) });

  test('control: the dev client certificate is accepted by both doors', async () => {
    assert.equal((await gw.client().allocate({ namespace: 'default' }, { deadline: 3_000 })).source, 'local');
    assert.equal((await gw.rest({ namespace: 'default' })).status, 200);
  });

  const refusedCases: [string, () => Pair][] = [
    ['a certificate from another CA', () => foreign.client],
    ['a certificate with only the serverAuth usage', () => certs.leaf('server-only', { eku: 'serverAuth' })],
    ['an expired certificate', () => certs.leaf('expired', { startDate: '20200101000000Z', endDate: '20210101000000Z' })],
    ['a certificate not yet valid', () => certs.leaf('future', { startDate: '20990101000000Z', endDate: '20991231000000Z' })],
  ];
  for (const [name, pair] of refusedCases) {
    test(`gRPC and REST refuse ${name} during the handshake`, async () => {
      const p = pair();
      const err = await caught<AllocatorError>(gw.client(p).allocate({ namespace: 'default' }, { deadline: 3_000 }));
      assert.equal(err.codeName, 'UNAVAILABLE');
      // Refused by the TLS handshake, not by a closed port.
      assert.doesNotMatch(err.details, /ECONNREFUSED/);
      await assert.rejects(gw.rest({ namespace: 'default' }, { pair: p }), (e: Error & { code?: string }) => e.code !== 'ECONNREFUSED');
    });
  }

  test('gRPC and REST refuse a client without a certificate', async () => {
    const creds = grpc.credentials.createSsl(readFileSync(certs.caFile));
    const Ctor = grpc.makeGenericClientConstructor({}, 'x');
    const raw = new Ctor(gw.grpcAddress, creds, { 'grpc.ssl_target_name_override': 'localhost' });
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      raw.makeUnaryRequest('/allocation.AllocationService/Allocate', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 3_000 }, (e) => resolve(e!));
    });
    raw.close();
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    await assert.rejects(gw.rest({ namespace: 'default' }, { pair: null }));
  });

  test('a chained certificate without any extended key usage gets UNAUTHENTICATED (agones-allocator accepts it)', async () => {
    const p = certs.leaf('no-eku', { eku: null });
    const err = await caught<AllocatorError>(gw.client(p).allocate({ namespace: 'default' }, { deadline: 3_000 }));
    assert.equal(err.codeName, 'UNAUTHENTICATED');
    const rest = await gw.rest({ namespace: 'default' }, { pair: p });
    assert.equal(rest.status, 401);
    assert.equal(rest.body.details[0].reason, 'UNAUTHENTICATED');
  });

  test('nothing was allocated by any refused caller (only the two control calls)', () => {
    assert.equal(gw.store.list().filter((g) => g.state === 'Allocated').length, 2);
  });
});

/**
 * A gateway reading copies of the server certificate and key from a folder the test can rewrite,
 * as a Secret volume update does.
 */
async function gatewayOnLiveFiles(t: TestContext, certs: TestCerts): Promise<{ gw: TestGateway; live: string }> {
  const live = join(certs.dir, 'live');
  mkdirSync(live);
  copyFileSync(certs.serverCertFile, join(live, 'tls.crt'));
  copyFileSync(certs.serverKeyFile, join(live, 'tls.key'));
  const gw = await startGateway(t, {
    certs,
    gameServers: readyPool(10),
    config: { tls: { certFile: join(live, 'tls.crt'), keyFile: join(live, 'tls.key'), clientCaDir: certs.clientCaDir } },
  });
  return { gw, live };
}

describe('certificate rotation without restart', async () => {
  test('a new server certificate is served on new connections of both doors', async (t) => {
    const certs = devCerts(t);
    const { gw, live } = await gatewayOnLiveFiles(t, certs);
    const ca = readFileSync(certs.caFile);
    const before = await presentedSerial(gw.gateway.grpcPort, ca, certs.client, ['h2']);
    assert.equal(before, serialOf(certs.serverCertFile));
    const next = certs.leaf('localhost', { eku: 'serverAuth', san: 'DNS:localhost,IP:127.0.0.1' });
    // Key first, then certificate: a half-written pair must not be taken (it fails the key check).
    copyFileSync(next.keyFile, join(live, 'tls.key'));
    copyFileSync(next.certFile, join(live, 'tls.crt'));
    const want = serialOf(next.certFile);
    await waitFor(async () => (await presentedSerial(gw.gateway.grpcPort, ca, certs.client, ['h2'])) === want, 5_000, 100);
    await waitFor(async () => (await presentedSerial(gw.gateway.restPort, ca, certs.client, ['http/1.1'])) === want, 5_000, 100);
    // Calls keep working on the new certificate.
    assert.equal((await gw.client().allocate({ namespace: 'default' })).source, 'local');
    assert.equal((await gw.rest({ namespace: 'default' })).status, 200);
    assert.ok(gw.logs.some((l) => l.msg === 'server certificates reloaded'));
  });

  test('a CA added to the client-CA directory is trusted, a removed one no longer', async (t) => {
    const certs = devCerts(t);
    const other = makeCerts(join(certs.dir, 'other'), 'partner');
    // Each accepted poll below allocates one; leave plenty.
    const gw = await startGateway(t, { certs, gameServers: readyPool(200) });
    const partner = () => gw.client(other.client).allocate({ namespace: 'default' }, { deadline: 2_000 });
    assert.equal((await caught<AllocatorError>(partner())).codeName, 'UNAVAILABLE');
    copyFileSync(other.caFile, join(certs.clientCaDir, 'partner.crt'));
    await waitFor(async () => (await gw.rest({ namespace: 'default' }, { pair: other.client }).then((r) => r.status, () => 0)) === 200, 5_000, 100);
    assert.equal((await partner()).source, 'local');
    unlinkSync(join(certs.clientCaDir, 'partner.crt'));
    await waitFor(async () => (await gw.rest({ namespace: 'default' }, { pair: other.client }).then((r) => r.status, () => 0)) === 0, 5_000, 100);
    assert.equal((await gw.rest({ namespace: 'default' })).status, 200, 'the dev CA must still be trusted');
  });

  test('a broken update keeps the previous certificates and is logged', async (t) => {
    const certs = devCerts(t);
    const { gw, live } = await gatewayOnLiveFiles(t, certs);
    copyFileSync(certs.clientKeyFile, join(live, 'tls.key')); // a key that does not match
    await waitFor(() => gw.logs.some((l) => l.msg === 'certificate reload failed; keeping the previous certificates'), 5_000, 100);
    assert.equal((await gw.client().allocate({ namespace: 'default' })).source, 'local');
  });
});

test('start-up fails clearly when the key does not match the certificate', (t) => {
  const certs = devCerts(t);
  const r = spawnSync(process.execPath, [
    new URL('../../src/main.ts', import.meta.url).pathname,
    '--grpc.port=0', '--rest.port=0', '--ops.port=0', '--grpc.host=127.0.0.1', '--rest.host=127.0.0.1', '--ops.host=127.0.0.1',
    `--tls.certFile=${certs.serverCertFile}`, `--tls.keyFile=${certs.clientKeyFile}`, `--tls.clientCaDir=${certs.clientCaDir}`,
    '--cluster.kind=memory', `--cluster.fleetFile=${new URL('../../config/fleets.yaml', import.meta.url).pathname}`,
  ], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /private key .*client\/tls\.key does not match certificate .*server\/tls\.crt/);
});
