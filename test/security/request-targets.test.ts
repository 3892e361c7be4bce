// A REST request target that names a JavaScript object property (issue 12 item 1's kind, at the
// door): the route table must answer 404, not serve Object.prototype's members.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { startGateway } from '../helpers/gateway.ts';

/** One raw HTTP/1.1 request over mTLS; resolves with the status line's code. */
function rawStatus(port: number, certs: ReturnType<typeof devCerts>, target: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), servername: 'localhost' }, () => {
      s.write(`${method} ${target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

test('request targets named after object properties are 404, never a 200 or 500', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs });
  for (const target of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '/__proto__', '/constructor', '/openapi.yaml/..']) {
    const code = await rawStatus(gw.gateway.restPort, certs, target);
    assert.ok(code === 404 || code === 400, `${target}: HTTP ${code}`);
  }
  assert.equal(await rawStatus(gw.gateway.restPort, certs, '/openapi.yaml'), 200);
});

test('a call whose deadline has already passed still has its body judged: an invalid request is 400', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs });
  const invalid = await gw.rest({ namespace: '', lists: { l: { deleteValues: [[null]] } } }, { headers: { 'grpc-timeout': '0H' } });
  assert.equal(invalid.status, 400, JSON.stringify(invalid.body));
  // A valid one is answered by the route: deadline passed (504) or, as here, nothing to allocate (429).
  const valid = await gw.rest({ namespace: 'default' }, { headers: { 'grpc-timeout': '0H' } });
  assert.ok(valid.status === 504 || valid.status === 429, JSON.stringify(valid.body));
});
