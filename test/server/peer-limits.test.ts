// Unauthenticated peers against a gateway process, from outside it: TCP connections that never
// finish TLS are bounded per peer address and overall, so a flood from one address cannot lock
// other callers out of either door.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, describe, test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';
import { closedWithin, grpcAllocate, h2Session, restAllocate, silentSockets } from '../helpers/raw-peers.ts';
import { peerKey } from '../../src/server/socket-limits.ts';

describe('handshake limits', async () => {
  const certs = devCerts({ after });

  test('peers are counted per IPv4 address and per IPv6 /64', () => {
    assert.equal(peerKey('10.1.2.3'), '10.1.2.3');
    assert.equal(peerKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(peerKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(peerKey('2001:0db8:0000:0001:ffff::9'), '2001:db8:0:1::/64');
    assert.equal(peerKey('::1'), '0:0:0:0::/64');
    assert.equal(peerKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });

  test('one address holding silent connections past maxConnections does not lock out another address (both doors)', async (t) => {
    // Defaults for the handshake caps; a small door so the test floods it quickly.
    const gw = await startGatewayProcess(t, { certs, name: 'hs-peer', fleet: simpleFleet('p', 20), config: { log: { level: 'info' }, admission: { maxConnections: 100 } } });
    const floods = [gw.grpcPort, gw.restPort].map((port) => silentSockets(port, 150, '127.0.0.1'));
    t.after(() => floods.forEach((f) => f.destroy()));
    await new Promise((r) => setTimeout(r, 300));
    // Another address is served on both doors while the flood holds its share.
    const session = await h2Session(gw.grpcPort, certs, { localAddress: '127.0.0.2' });
    t.after(() => session.close());
    const g = await grpcAllocate(session);
    assert.equal(g.status, 0, g.message);
    const r = await restAllocate(gw.restPort, certs, { localAddress: '127.0.0.2' });
    assert.equal(r.status, 200, r.body);
    // Beyond the per-peer cap (default 32) the flood is closed at accept, long before the 10 s handshake timeout.
    for (const f of floods) {
      const closed = await closedWithin(f.closed, 2_000);
      assert.ok(closed >= 150 - 32, `only ${closed} of 150 silent connections from one address closed within 2 s`);
      assert.ok(closed < 150, 'the first ones wait for their handshake timeout');
    }
  });

  test('handshakes in progress are capped overall (maxHandshakes), below maxConnections; established connections keep serving', async (t) => {
    const gw = await startGatewayProcess(t, {
      certs, name: 'hs-total', fleet: simpleFleet('q', 20),
      config: { log: { level: 'info' }, admission: { maxConnections: 200, maxHandshakes: 40, maxHandshakesPerPeer: 32 } },
    });
    const established = await h2Session(gw.grpcPort, certs, { localAddress: '127.0.0.3' });
    t.after(() => established.close());
    // 60 addresses, one silent connection each: no peer is over its cap, the door is.
    const floods = Array.from({ length: 60 }, (_, i) => silentSockets(gw.grpcPort, 1, `127.0.1.${i + 1}`));
    t.after(() => floods.forEach((f) => f.destroy()));
    const closed = await closedWithin(floods.flatMap((f) => f.closed), 2_000);
    assert.equal(closed, 20, `${closed} of 60 closed at once (cap 40)`);
    const g = await grpcAllocate(established);
    assert.equal(g.status, 0, g.message);
    // Once the silent ones go, new peers handshake again.
    floods.forEach((f) => f.destroy());
    await new Promise((r) => setTimeout(r, 300));
    const fresh = await h2Session(gw.grpcPort, certs, { localAddress: '127.0.0.4' });
    t.after(() => fresh.close());
    assert.equal((await grpcAllocate(fresh)).status, 0);
  });
});

describe('established connections per client identity', async () => {
  const certs = devCerts({ after });

  test('one identity holding every connection slot of the doors does not lock out another identity', async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'conn-share', fleet: simpleFleet('c', 100), config: { log: { level: 'info' }, admission: { maxConnections: 40 } } });
    // 40 gRPC sessions and 40 kept-alive REST connections from one identity, opened a few at a time.
    const sessions: Awaited<ReturnType<typeof h2Session>>[] = [];
    const agent = new https.Agent({ keepAlive: true, maxSockets: 40 });
    t.after(() => {
      sessions.forEach((s) => s.destroy());
      agent.destroy();
    });
    for (let i = 0; i < 40; i += 8) {
      const batch = await Promise.all(Array.from({ length: 8 }, () => h2Session(gw.grpcPort, certs).catch(() => null)));
      sessions.push(...batch.filter((s) => s !== null));
      await Promise.all(Array.from({ length: 8 }, () => restAllocate(gw.restPort, certs, { agent, write: (req, body) => setTimeout(() => req.end(body), 300) }).catch(() => null)));
    }
    await new Promise((r) => setTimeout(r, 500));
    const alive = sessions.filter((s) => !s.closed && !s.destroyed).length;
    assert.ok(alive <= 10, `${alive} gRPC connections of one identity kept (share: a quarter of 40)`);
    const quiet = certs.leaf('quiet-conn', { san: 'URI:spiffe://allocator-gateway/quiet' });
    const other = await h2Session(gw.grpcPort, certs, { pair: quiet, localAddress: '127.0.0.5' });
    t.after(() => other.destroy());
    assert.equal((await grpcAllocate(other)).status, 0);
    const r = await restAllocate(gw.restPort, certs, { pair: quiet, localAddress: '127.0.0.5' });
    assert.equal(r.status, 200, r.body);
  });
});
