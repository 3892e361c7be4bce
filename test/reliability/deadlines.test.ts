// Deadlines longer than a timer can hold (found by schemathesis: grpc-timeout 99999999H) must mean
// "a long time", not "already expired".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { startGateway } from '../helpers/gateway.ts';

test('a deadline beyond 2^31-1 ms allocates instead of timing out at once (REST grpc-timeout and gRPC)', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs, gameServers: readyPool(5) });
  for (const timeout of ['99999999H', '99999999M', '2147484S']) {
    const r = await gw.rest({ namespace: 'default' }, { headers: { 'grpc-timeout': timeout } });
    assert.equal(r.status, 200, `${timeout}: ${JSON.stringify(r.body)}`);
  }
  const far = new Date(Date.now() + 100 * 24 * 3600 * 1000);
  assert.equal((await gw.client().allocate({ namespace: 'default' }, { deadline: far })).source, 'local');
});
