// Slow authenticated peers against a gateway process, from outside it: a REST body sent one byte
// at a time cannot outlive the call's deadline or the body timeout, and one identity holding
// slow calls cannot take every admission slot from the others.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';
import { grpcAllocate, grpcPrefix, grpcStream, h2Session, restAllocate, trickle, type GrpcReply, type RestResult } from '../helpers/raw-peers.ts';
import { capacityOf, rssMiB } from '../reliability/load.ts';

/** The reply, or null when none came within `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | null> => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);

describe('slow REST bodies', async () => {
  const certs = devCerts({ after });

  test('headers trickled a byte a second are cut off at the 10 s headers timeout (not up to 30 s later)', async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'slow-headers', fleet: simpleFleet('h', 5), config: { log: { level: 'info' } } });
    const { readFileSync } = await import('node:fs');
    const tls = await import('node:tls');
    const t0 = Date.now();
    const s = tls.connect({ host: '127.0.0.1', port: gw.restPort, ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), servername: 'localhost' }, () =>
      s.write('POST /gameserverallocation HTTP/1.1\r\nHost: x\r\n'),
    );
    s.on('error', () => {});
    const drip = setInterval(() => (s.writable ? s.write('X') : clearInterval(drip)), 1_000);
    t.after(() => {
      clearInterval(drip);
      s.destroy();
    });
    const closed = await within(new Promise<number>((resolve) => s.once('close', () => resolve(Date.now() - t0))), 20_000);
    assert.ok(closed !== null, 'a connection trickling its headers was still open after 20 s');
    assert.ok(closed >= 9_500 && closed < 13_000, `closed after ${closed} ms`);
  });

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

describe('partial gRPC messages', async () => {
  const certs = devCerts({ after });
  const ALLOCATE = '/allocation.AllocationService/Allocate';

  /** Opens `streams` Allocate streams that announce a message of nearly 4 MiB and send `bytes` of it. */
  function partials(session: import('node:http2').ClientHttp2Session, streams: number, bytes: number, headers: Record<string, string> = {}): Promise<GrpcReply>[] {
    return Array.from({ length: streams }, () => {
      const { stream, reply } = grpcStream(session, ALLOCATE, headers);
      stream.write(Buffer.concat([grpcPrefix(4 * 1024 * 1024 - 64), Buffer.alloc(bytes, 0x42)]));
      return reply;
    });
  }

  test('unfinished messages on one connection are bounded by admission.maxSessionMemoryMiB: streams past it UNAVAILABLE OVERLOADED, memory bounded', async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'partial-conn', fleet: simpleFleet('m', 5), config: { log: { level: 'info' } } });
    const session = await h2Session(gw.grpcPort, certs);
    t.after(() => session.destroy());
    const rss0 = rssMiB(gw.pid);
    // 40 streams × 3 MiB = 120 MiB of partial messages; the connection may hold 16 MiB.
    const replies = await Promise.all(partials(session, 40, 3 * 1024 * 1024).map((r) => within(r, 8_000)));
    const growth = rssMiB(gw.pid) - rss0;
    const refused = replies.filter((r) => r !== null && r.status === 14);
    const open = replies.filter((r) => r === null).length;
    assert.ok(refused.length >= 40 - 6 && open <= 16 / 3, `${refused.length} of 40 partial streams refused, ${open} still open`);
    for (const r of refused) assert.match(r!.message, /connection holds its limit of 16 MiB of unfinished request bytes/);
    // What is held stays near the 16 MiB budget (plus buffers not yet collected); unbounded it was 120 MiB and more.
    assert.ok(growth < 64, `gateway RSS grew ${growth.toFixed(0)} MiB for 120 MiB of partial messages`);
    // Another connection is served meanwhile.
    const other = await h2Session(gw.grpcPort, certs);
    t.after(() => other.destroy());
    assert.equal((await grpcAllocate(other)).status, 0);
  });

  test('one identity holds at most its share of unfinished request bytes across connections; another identity is served', async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'partial-id', fleet: simpleFleet('i', 5), config: { log: { level: 'info' }, admission: { maxPendingRequestMiB: 32 } } });
    // Four connections × 16 MiB each would be 64 MiB; the identity may hold a quarter of 32.
    const sessions = await Promise.all(Array.from({ length: 4 }, () => h2Session(gw.grpcPort, certs)));
    t.after(() => sessions.forEach((s) => s.destroy()));
    const replies = await Promise.all(sessions.flatMap((s) => partials(s, 8, 1024 * 1024)).map((r) => within(r, 5_000)));
    const refused = replies.filter((r) => r !== null && r.status === 14).length;
    assert.ok(refused >= 32 - 8, `${refused} of 32 partial streams refused`);
    const quiet = certs.leaf('quiet-grpc', { san: 'URI:spiffe://allocator-gateway/quiet' });
    const other = await h2Session(gw.grpcPort, certs, { pair: quiet });
    t.after(() => other.destroy());
    const { stream, reply } = grpcStream(other, ALLOCATE);
    // A 3 MiB message (an unknown field of padding, skipped by the decoder) from the quiet identity is received and served.
    const pad = Buffer.alloc(3 * 1024 * 1024, 0x41);
    const varint = (n: number): number[] => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, ...varint(n >>> 7)]);
    const field = Buffer.concat([Buffer.from(varint((1023 << 3) | 2)), Buffer.from(varint(pad.length)), pad]);
    const msg = Buffer.concat([Buffer.from([0x0a, 7]), Buffer.from('default'), field]);
    stream.end(Buffer.concat([grpcPrefix(msg.length), msg]));
    const r = await within(reply, 5_000);
    assert.equal(r?.status, 0, r?.message);
  });

  test("a message that never finishes is cut off at the call's deadline or admission.bodyTimeoutMs: DEADLINE_EXCEEDED and the stream closed", async (t) => {
    const gw = await startGatewayProcess(t, { certs, name: 'partial-time', fleet: simpleFleet('t', 5), config: { log: { level: 'info' }, admission: { bodyTimeoutMs: 1_500 } } });
    const session = await h2Session(gw.grpcPort, certs);
    t.after(() => session.destroy());
    const [withDeadline] = partials(session, 1, 1024, { 'grpc-timeout': '700m' });
    const [withoutDeadline] = partials(session, 1, 1024);
    const a = await within(withDeadline!, 6_000);
    const b = await within(withoutDeadline!, 6_000);
    assert.ok(a, 'the stream with a 700 ms deadline was still open after 6 s');
    assert.equal(a.status, 4);
    assert.ok(a.ms < 3_000, `closed after ${a.ms} ms`);
    assert.ok(b, 'the stream without a deadline was still open after 6 s (body timeout 1.5 s)');
    assert.equal(b.status, 4);
    assert.ok(b.ms >= 1_400 && b.ms < 4_000, `closed after ${b.ms} ms`);
    assert.equal((await grpcAllocate(session)).status, 0, 'the connection itself still serves');
  });
});
