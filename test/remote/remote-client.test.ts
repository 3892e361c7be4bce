// The remote client against real loopback servers with mTLS: load spread over a target's
// endpoints, classification of answers, breaker, channel rebuilt on a new client certificate,
// and agones-allocator's keepalive enforcement (the double's GOAWAY too_many_pings).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { CLIENT_CHANNEL_OPTIONS, createAllocatorClient } from '../../src/client/index.ts';
import { RemoteClient, type RemoteTarget } from '../../src/remote/remote-client.ts';
import { DEFAULT_BREAKER } from '../../src/remote/endpoint-breakers.ts';
import { REMOTE_CHANNEL_OPTIONS } from '../../src/remote/channel-pool.ts';
import { Budget } from '../../src/router/budget.ts';
import { devCerts } from '../helpers/certs.ts';
import { AGONES_MIN_PING_INTERVAL_MS, startAgonesAllocatorDouble } from '../helpers/agones-allocator-double.ts';

const certs = devCerts({ after });
const material = (pair = certs.client, version = 'v1') => ({ cert: readFileSync(pair.certFile), key: readFileSync(pair.keyFile), ca: readFileSync(certs.caFile), version });

function client(o: Partial<ConstructorParameters<typeof RemoteClient>[0]> = {}): RemoteClient {
  const c = new RemoteClient({ attemptTimeoutMs: 2_000, connectTimeoutMs: 1_000, minAttemptMs: 20, breaker: DEFAULT_BREAKER, ...o });
  after(() => c.close());
  return c;
}

const call = (c: RemoteClient, target: RemoteTarget, key: string | null = null) =>
  c.allocate(target, { namespace: 'default' }, { budget: new Budget(Date.now() + 3_000), idempotencyKey: key, reqId: 'r', signal: new AbortController().signal });

describe('RemoteClient', () => {
  test('spreads requests over a target\'s endpoints (rotating start)', async (t) => {
    const gs = Array.from({ length: 8 }, (_, i) => ({ name: `gs-${i}` }));
    const d1 = await startAgonesAllocatorDouble(t, { certs, gameServers: gs.slice(0, 4) });
    const d2 = await startAgonesAllocatorDouble(t, { certs, gameServers: gs.slice(4) });
    const c = client();
    const target: RemoteTarget = { name: 'x', endpoints: [d1.endpoint, d2.endpoint], tls: material(), credentials: 'c', serverCa: '' };
    const sources: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(c, target);
      assert.ok(r.ok);
      sources.push(r.endpoint);
    }
    assert.equal(d1.calls.length, 3);
    assert.equal(d2.calls.length, 3);
    assert.notEqual(sources[0], sources[1]);
  });

  test('classifies answers: no capacity stops the target without harming health; 422 is a rejection', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs });
    const c = client({ breaker: { ...DEFAULT_BREAKER, volumeThreshold: 2 } });
    const target: RemoteTarget = { name: 'x', endpoints: [d.endpoint], tls: material(), credentials: 'c', serverCa: '' };
    for (let i = 0; i < 4; i++) {
      const r = await call(c, target);
      assert.ok(!r.ok);
      assert.deepEqual(r.attempts.map((a) => [a.outcome, a.code, a.message]), [['no-capacity', 'RESOURCE_EXHAUSTED', 'there is no available GameServer to allocate']]);
    }
    assert.equal(c.breakerState(target, d.endpoint), 'closed');
    d.mode = 'invalid';
    const r = await call(c, target);
    assert.ok(!r.ok);
    assert.equal(r.attempts[0]!.outcome, 'rejected');
    assert.equal(r.attempts[0]!.code, '422');
    assert.equal(c.breakerState(target, d.endpoint), 'closed');
    d.mode = 'unavailable';
    // 5 healthy answers are in the window: failures must reach 50 % of it.
    let failures = 0;
    while (c.breakerState(target, d.endpoint) !== 'open' && failures < 10) {
      await call(c, target);
      failures++;
    }
    assert.ok(failures >= 5 && failures <= 6, `opened after ${failures} failures`); // more than 50 % of the window
    const callsBefore = d.calls.length;
    const skipped = await call(c, target);
    assert.ok(!skipped.ok);
    assert.equal(skipped.attempts[0]!.outcome, 'breaker-open');
    // Skipped, not tried: the endpoint saw no call (a "< 5 ms" bound was the same claim, timed).
    assert.equal(d.calls.length, callsBefore, 'an open breaker still sent the call');
  });

  test('an unsent failure moves to the next endpoint; a lost reply does not', async (t) => {
    const hang = await startAgonesAllocatorDouble(t, { certs, gameServers: [{ name: 'h' }], mode: 'hang' });
    const ok = await startAgonesAllocatorDouble(t, { certs, batchWaitMs: 20, gameServers: [{ name: 'o1' }, { name: 'o2' }] });
    const c = client({ attemptTimeoutMs: 200 });
    const target: RemoteTarget = { name: 'x', endpoints: [hang.endpoint, ok.endpoint], tls: material(), credentials: 'c', serverCa: '' };
    const r1 = await call(c, target); // starts at hang
    assert.ok(!r1.ok);
    assert.deepEqual(r1.attempts.map((a) => [a.endpoint, a.code, a.ambiguous]), [[hang.endpoint, 'DEADLINE_EXCEEDED', true]]);
    await call(c, target); // rotation: starts at ok
    const r3 = await call(c, target, 'gw1-key'); // starts at hang again; keyed, still no other endpoint (the router decides)
    assert.ok(!r3.ok);
    assert.deepEqual(r3.attempts.map((a) => [a.endpoint, a.ambiguous]), [[hang.endpoint, true]]);
    assert.equal(hang.calls.at(-1)!.headers['idempotency-key'], 'gw1-key');
  });

  test('a changed client certificate rebuilds the channel', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, gameServers: [{ name: 'a' }, { name: 'b' }] });
    const rebuilt: string[] = [];
    const c = client({ onChannelRebuild: (e) => rebuilt.push(e) });
    assert.ok((await call(c, { name: 'x', endpoints: [d.endpoint], tls: material(), credentials: 'c', serverCa: '' })).ok);
    const renewed = certs.leaf('renewed-client');
    assert.ok((await call(c, { name: 'x', endpoints: [d.endpoint], tls: material(renewed, 'v2'), credentials: 'c', serverCa: '' })).ok);
    assert.deepEqual(rebuilt, [d.endpoint]);
  });
});

describe('agones-allocator keepalive enforcement (double)', () => {
  test('pings faster than once a minute earn GOAWAY too_many_pings; our channel options do not', async (t) => {
    const d = await startAgonesAllocatorDouble(t, { certs, gameServers: Array.from({ length: 50 }, (_, i) => ({ name: `k${i}` })) });
    const ca = readFileSync(certs.caFile);
    const eager = createAllocatorClient({
      address: d.endpoint, ca, cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), serverName: 'localhost',
      channelOptions: { 'grpc.keepalive_time_ms': 200, 'grpc.keepalive_permit_without_calls': 1 },
    });
    t.after(() => eager.close());
    await eager.allocate({ namespace: 'default' }, { deadline: 2_000 });
    const deadline = Date.now() + 5_000;
    while (d.goaways === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(d.goaways >= 1, 'GOAWAY sent to the eager pinger');
    const before = d.goaways;
    const polite = createAllocatorClient({
      address: d.endpoint, ca, cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), serverName: 'localhost',
      channelOptions: REMOTE_CHANNEL_OPTIONS,
    });
    t.after(() => polite.close());
    for (let i = 0; i < 5; i++) {
      await polite.allocate({ namespace: 'default' }, { deadline: 2_000 });
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(d.goaways, before);
    // One second of calls only shows the polite client does not ping every 200 ms; what keeps it
    // clear of the double's (and agones-allocator's) one-minute limit is the configured interval.
    for (const [name, options] of [['REMOTE_CHANNEL_OPTIONS', REMOTE_CHANNEL_OPTIONS], ['CLIENT_CHANNEL_OPTIONS', CLIENT_CHANNEL_OPTIONS]] as const) {
      const interval = options['grpc.keepalive_time_ms'];
      assert.ok(typeof interval === 'number' && interval >= AGONES_MIN_PING_INTERVAL_MS, `${name} pings every ${interval} ms; agones-allocator allows one a minute`);
    }
  });
});
