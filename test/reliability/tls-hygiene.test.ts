// TLS versions at both doors (extends test/server/tls.test.ts, which covers refused certificates,
// rotation and the key/certificate mismatch at start): 1.3 negotiated by default, 1.2 accepted,
// 1.1 and older refused, and tls.minVersion TLSv1.3 refusing 1.2.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';

function handshake(port: number, certs: TestCerts, o: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), ...o,
    }, () => {
      const p = s.getProtocol() ?? '';
      s.destroy();
      resolve(p);
    });
    s.on('error', reject);
  });
}

describe('TLS versions', async () => {
  const certs = devCerts({ after });
  const gw = await startGatewayProcess({ after }, { certs, name: 'tls', fleet: simpleFleet('t', 2), config: { log: { level: 'info' } } });
  const doors: [string, number, string[]][] = [['gRPC', gw.grpcPort, ['h2']], ['REST', gw.restPort, ['http/1.1']]];
  for (const [door, port, alpn] of doors) {
    test(`${door}: TLS 1.3 is negotiated by default, TLS 1.2 is accepted`, async () => {
      assert.equal(await handshake(port, certs, { ALPNProtocols: alpn }), 'TLSv1.3');
      assert.equal(await handshake(port, certs, { ALPNProtocols: alpn, maxVersion: 'TLSv1.2' }), 'TLSv1.2');
    });
    test(`${door}: TLS 1.1 and 1.0 are refused`, async () => {
      for (const maxVersion of ['TLSv1.1', 'TLSv1'] as const) {
        await assert.rejects(
          handshake(port, certs, { ALPNProtocols: alpn, minVersion: 'TLSv1', maxVersion, ciphers: 'DEFAULT@SECLEVEL=0' }),
          // The server answers with alert 70 (protocol_version): the refusal is the gateway's, not the client's.
          (e: Error & { code?: string }) => e.code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
          `${door} accepted ${maxVersion}`,
        );
      }
    });
  }

  test('tls.minVersion TLSv1.3: both doors refuse TLS 1.2', async (t) => {
    const strict = await startGatewayProcess(t, { certs, name: 'tls13', fleet: simpleFleet('s', 2), config: { log: { level: 'info' }, tls: { minVersion: 'TLSv1.3' } } });
    for (const [port, alpn] of [[strict.grpcPort, ['h2']], [strict.restPort, ['http/1.1']]] as const) {
      await assert.rejects(handshake(port, certs, { ALPNProtocols: [...alpn], maxVersion: 'TLSv1.2' }));
      assert.equal(await handshake(port, certs, { ALPNProtocols: [...alpn] }), 'TLSv1.3');
    }
  });
});
