// Slow authenticated peers against a gateway process, from outside it: a REST body sent one byte
// at a time cannot outlive the call's deadline or the body timeout, and one identity holding
// slow calls cannot take every admission slot from the others.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';
import { restAllocate, trickle, type RestResult } from '../helpers/raw-peers.ts';
import { capacityOf } from '../reliability/load.ts';

/** The reply, or null when none came within `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | null> => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);

describe('slow REST bodies', async () => {
  const certs = devCerts({ after });

  test("a body trickled after the headers is cut off at the call's deadline: 504 DEADLINE_EXCEEDED, nothing allocated", async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'slow-deadline', fleet: simpleFleet('d', 5), config: { log: { level: 'info' } } });
    const r = await within(restAllocate(gw.restPort, certs, { headers: { 'grpc-timeout': '1500m' }, write: trickle(200) }), 8_000);
    assert.ok(r, 'no answer within 8 s for a call with a 1.5 s deadline');
    assert.equal(r.status, 504, r.body);
    assert.equal(JSON.parse(r.body).details[0].reason, 'DEADLINE_EXCEEDED');
    assert.ok(r.ms >= 1_400 && r.ms < 4_000, `answered after ${r.ms} ms`);
    assert.equal(r.headers.connection, 'close', 'the unread rest of the body is not waited for');
    assert.equal((await capacityOf(gw.address, certs, 'default')).allocated, 0);
  });

  test('without a deadline the body must arrive within admission.bodyTimeoutMs: 408, the connection closed', async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'slow-body', fleet: simpleFleet('b', 5), config: { log: { level: 'info' }, admission: { bodyTimeoutMs: 1_000 } } });
    const r = await within(restAllocate(gw.restPort, certs, { write: trickle(200) }), 8_000);
    assert.ok(r, 'no answer within 8 s with a 1 s body timeout');
    assert.equal(r.status, 408, r.body);
    assert.equal(JSON.parse(r.body).details[0].reason, 'DEADLINE_EXCEEDED');
    assert.ok(r.ms >= 900 && r.ms < 4_000, `answered after ${r.ms} ms`);
    // A body that arrives in time is still served.
    assert.equal((await restAllocate(gw.restPort, certs)).status, 200);
  });

  test('one identity holding slow calls gets only its share of admission.maxInFlight; another identity is served', async (t) => {
    // maxInFlight 16 and the default share (a quarter) let one identity hold 4 calls.
    const gw = await startGatewayProcess(t, { certs, name: 'slow-share', fleet: simpleFleet('s', 20), config: { log: { level: 'info' }, admission: { maxInFlight: 16 } } });
    const noisy: Promise<RestResult | Error>[] = [];
    for (let i = 0; i < 30; i++) {
      noisy.push(restAllocate(gw.restPort, certs, { write: trickle(1_000) }).catch((e: Error) => e));
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    const quiet = certs.leaf('quiet-client', { san: 'URI:spiffe://allocator-gateway/quiet' });
    const served = await gw.client(quiet).allocate({ namespace: 'default' }, { deadline: 5_000 });
    assert.equal(served.source, 'local');
    const rest = await restAllocate(gw.restPort, certs, { pair: quiet });
    assert.equal(rest.status, 200, rest.body);
    // The noisy identity's calls past its share were refused at once, by identity.
    const refused = (await Promise.all(noisy.map((p) => within(p, 1_000)))).filter((r): r is RestResult => r !== null && !(r instanceof Error));
    assert.ok(refused.length >= 30 - 4, `${refused.length} of 30 slow calls answered at once`);
    for (const r of refused) {
      assert.equal(r.status, 503, r.body);
      const info = JSON.parse(r.body).details[0];
      assert.equal(info.reason, 'RATE_LIMITED');
      assert.match(info.metadata.identity, /test-client/);
    }
    // Counted as the quiet identity: the noisy one still holds its share (its bodies have not arrived).
    const asQuiet = { caFile: certs.caFile, clientCertFile: quiet.certFile, clientKeyFile: quiet.keyFile };
    assert.equal((await capacityOf(gw.address, asQuiet, 'default')).allocated, 2, 'exactly the two served calls allocated');
  });
});
