// Connection age, from outside a gateway process: a connection authenticated by a CA that has
// since been removed from the client-CA directory (or by a certificate that has since expired)
// does not live on; both doors close connections older than admission.maxConnectionAgeMs.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { devCerts, makeCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';
import { grpcAllocate, h2Session, restAllocate } from '../helpers/raw-peers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connection age', async () => {
  const certs = devCerts({ after });
  const partner = makeCerts(join(certs.dir, 'partner'), 'partner-client');
  const partnerCerts = { ...certs, client: partner.client };

  async function gatewayTrustingPartner(t: { after(fn: () => Promise<void> | void): void }, name: string, admission: Record<string, unknown>) {
    const caDir = join(certs.dir, `ca-${name}`);
    mkdirSync(caDir, { recursive: true });
    copyFileSync(certs.caFile, join(caDir, 'ca.crt'));
    copyFileSync(partner.caFile, join(caDir, 'partner.crt'));
    const gw = await startGatewayProcess(t, { certs, name, fleet: simpleFleet(name, 20), config: { log: { level: 'info' }, tls: { clientCaDir: caDir }, admission } });
    const removePartner = async (): Promise<void> => {
      rmSync(join(caDir, 'partner.crt'));
      const reloads = gw.logs.filter((l) => l.msg === 'server certificates reloaded').length;
      for (let i = 0; i < 50 && gw.logs.filter((l) => l.msg === 'server certificates reloaded').length === reloads; i++) await sleep(100);
    };
    return { gw, removePartner };
  }

  test('gRPC: a connection is sent GOAWAY at maxConnectionAgeMs (±10 %) and closed after the grace', async (t) => {
    const { gw } = await gatewayTrustingPartner(t, 'age-grpc', { maxConnectionAgeMs: 2_000, maxConnectionAgeGraceMs: 500 });
    const t0 = Date.now();
    const session = await h2Session(gw.grpcPort, partnerCerts);
    t.after(() => session.destroy());
    const goaway = new Promise<number>((resolve) => session.once('goaway', () => resolve(Date.now() - t0)));
    const closed = new Promise<number>((resolve) => session.once('close', () => resolve(Date.now() - t0)));
    assert.equal((await grpcAllocate(session)).status, 0);
    const ended = await Promise.race([closed, sleep(6_000).then(() => null)]);
    assert.ok(ended !== null, 'the connection was still open after 6 s (max age 2 s)');
    const sentGoaway = await Promise.race([goaway, sleep(0).then(() => null)]);
    assert.ok(sentGoaway !== null && sentGoaway >= 1_700 && sentGoaway < 3_500, `GOAWAY after ${sentGoaway} ms`);
    assert.ok(ended < 4_500, `closed after ${ended} ms`);
  });

  test('REST: a kept-alive connection is reused within maxConnectionAgeMs and closed past it', async (t) => {
    const { gw } = await gatewayTrustingPartner(t, 'age-rest', { maxConnectionAgeMs: 2_000, maxConnectionAgeGraceMs: 500 });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const t0 = Date.now();
    const first = await restAllocate(gw.restPort, partnerCerts, { agent });
    assert.equal(first.status, 200, first.body);
    const [socket] = Object.values(agent.freeSockets).flat() as import('node:net').Socket[];
    assert.ok(socket, 'the socket is kept alive for reuse');
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const second = await restAllocate(gw.restPort, partnerCerts, { agent });
    assert.equal(second.status, 200);
    assert.equal(Object.values(agent.freeSockets).flat()[0], socket, 'the same socket was reused');
    const closed = await Promise.race([closedAt, sleep(6_000).then(() => null)]);
    assert.ok(closed !== null, 'the kept-alive socket was still open after 6 s (max age 2 s; keepAliveTimeout 60 s)');
    assert.ok(closed - t0 < 4_000, `closed after ${closed - t0} ms`);
  });

  test('REST: a call in flight when the age is up is answered, then the connection closes', async (t) => {
    const { gw } = await gatewayTrustingPartner(t, 'age-rest-busy', { maxConnectionAgeMs: 1_000, maxConnectionAgeGraceMs: 3_000 });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    // A body that arrives slowly keeps the call in flight across the age limit.
    const r = await restAllocate(gw.restPort, certs, {
      agent,
      write: (req, body) => {
        req.write(body.slice(0, 5));
        setTimeout(() => req.end(body.slice(5)), 1_800);
      },
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers.connection, 'close');
  });

  test("both doors close a removed CA's connections when the CA directory changes, not only at their max age; other connections stay", async (t) => {
    const { gw, removePartner } = await gatewayTrustingPartner(t, 'ca-removed', {});
    const removed = await h2Session(gw.grpcPort, partnerCerts);
    const kept = await h2Session(gw.grpcPort, certs);
    t.after(() => [removed, kept].forEach((s) => s.destroy()));
    assert.equal((await grpcAllocate(removed)).status, 0);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    assert.equal((await restAllocate(gw.restPort, partnerCerts, { agent })).status, 200);
    const [restSocket] = Object.values(agent.freeSockets).flat() as import('node:net').Socket[];
    assert.ok(restSocket);
    const t0 = Date.now();
    const grpcClosed = new Promise<number>((resolve) => removed.once('close', () => resolve(Date.now() - t0)));
    const restClosed = new Promise<number>((resolve) => restSocket.once('close', () => resolve(Date.now() - t0)));
    await removePartner();
    const limit = sleep(8_000).then(() => null);
    const [g, r] = await Promise.all([Promise.race([grpcClosed, limit]), Promise.race([restClosed, limit])]);
    assert.ok(g !== null, "the removed CA's gRPC connection was still open 8 s after the removal (max age 30 min)");
    assert.ok(r !== null, "the removed CA's REST connection was still open 8 s after the removal");
    assert.equal((await grpcAllocate(kept)).status, 0, 'a connection of a CA still trusted is untouched');
  });
});

describe('client certificate expiry', async () => {
  const certs = devCerts({ after });

  test('both doors close a connection when its client certificate expires, well before maxConnectionAgeMs', async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'expiry', fleet: simpleFleet('x', 20), config: { log: { level: 'info' }, admission: { maxConnectionAgeGraceMs: 500 } } });
    // openssl's date format, UTC, 6 s from now (whole seconds).
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 6_000);
    const endDate = `${at.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
    const short = certs.leaf('short-lived', { san: 'URI:spiffe://allocator-gateway/short', endDate });
    const shortCerts = { ...certs, client: short };
    const session = await h2Session(gw.grpcPort, shortCerts);
    t.after(() => session.destroy());
    const grpcClosed = new Promise<number>((resolve) => session.once('close', () => resolve(Date.now())));
    assert.equal((await grpcAllocate(session)).status, 0);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    assert.equal((await restAllocate(gw.restPort, shortCerts, { agent })).status, 200);
    const [socket] = Object.values(agent.freeSockets).flat() as import('node:net').Socket[];
    assert.ok(socket, 'the REST socket is kept alive');
    const restClosed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const deadline = sleep(at.getTime() - Date.now() + 5_000).then(() => null);
    const [g, r] = await Promise.all([Promise.race([grpcClosed, deadline]), Promise.race([restClosed, deadline])]);
    assert.ok(g !== null, 'the gRPC connection outlived its client certificate by 5 s');
    assert.ok(r !== null, 'the REST connection outlived its client certificate by 5 s');
    assert.ok(g >= at.getTime() - 200 && r >= at.getTime() - 200, 'closed before the certificate expired');
  });
});
