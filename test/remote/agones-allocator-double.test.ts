// The agones-allocator stand-in behaves as the real one does where the gateway depends on it
// (control-plane §6, allocation-semantics §2–§4): batch window, the caller's deadline ignored,
// selection and ordering, validation answers, no idempotency, failure modes.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createAllocatorClient, type AllocatorClient, AllocatorError } from '../../src/client/index.ts';
import { devCerts } from '../helpers/certs.ts';
import { caught } from '../helpers/gateway.ts';
import { startAgonesAllocatorDouble, type AgonesAllocatorDouble, type DoubleOptions } from '../helpers/agones-allocator-double.ts';

const certs = devCerts({ after });

function clientOf(d: AgonesAllocatorDouble): AllocatorClient {
  const c = createAllocatorClient({
    address: d.endpoint, ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), serverName: 'localhost',
  });
  after(() => c.close());
  return c;
}

async function start(t: { after(fn: () => Promise<void> | void): void }, o: Omit<DoubleOptions, 'certs'>): Promise<AgonesAllocatorDouble> {
  return await startAgonesAllocatorDouble(t, { certs, ...o });
}

function rest(d: AgonesAllocatorDouble, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: d.port, path: '/gameserverallocation', method: 'POST', ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), servername: 'localhost', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('agones-allocator stand-in', () => {
  test('batch window: 500 ms by default, a lone request waits up to one window; configurable', async (t) => {
    const d = await start(t, { gameServers: Array.from({ length: 4 }, (_, i) => ({ name: `w${i}` })) });
    const c = clientOf(d);
    await c.allocate({ namespace: 'default' }, { deadline: 3_000 }); // warm the connection
    // Right after a batch was served the loop sleeps a window: sequential calls wait about one each.
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await c.allocate({ namespace: 'default' }, { deadline: 3_000 });
      took.push(performance.now() - started);
    }
    assert.ok(took.every((x) => x < 1_500) && took.reduce((a, b) => a + b) >= 1_000, `waited ${took.map(Math.round).join(', ')} ms`);
    const fast = await start(t, { batchWaitMs: 20, gameServers: [{ name: 'f0' }, { name: 'f1' }] });
    const cf = clientOf(fast);
    await cf.allocate({ namespace: 'default' }, { deadline: 3_000 });
    const s2 = performance.now();
    await cf.allocate({ namespace: 'default' }, { deadline: 3_000 });
    assert.ok(performance.now() - s2 < 300);
  });

  test("ignores the caller's deadline: the caller gets DEADLINE_EXCEEDED and the GameServer is Allocated after it left", async (t) => {
    const d = await start(t, { gameServers: [{ name: 'late' }] });
    const c = clientOf(d);
    const err = await caught<AllocatorError>(c.allocate({ namespace: 'default', metadata: { annotations: { 'x/request': 'r1' } } }, { deadline: 150 }));
    assert.equal(err.codeName, 'DEADLINE_EXCEEDED');
    await d.drained();
    await d.drained();
    assert.equal(d.gameServers[0]!.state, 'Allocated');
    assert.equal(d.gameServers[0]!.annotations?.['x/request'], 'r1');
    assert.equal(d.calls[0]!.allocated, 'late');
    assert.equal(d.calls[0]!.callerGone, true);
  });

  test('counters, lists, priorities and Packed ordering; actions clamped', async (t) => {
    const d = await start(t, {
      batchWaitMs: 10,
      gameServers: [
        { name: 'a', nodeName: 'n1', counters: { rooms: { count: 1, capacity: 10 } }, lists: { players: { values: ['p1'], capacity: 2 } } },
        { name: 'b', nodeName: 'n1', counters: { rooms: { count: 8, capacity: 10 } } },
        { name: 'c', nodeName: 'n2', state: 'Allocated', counters: { rooms: { count: 9, capacity: 10 } } },
        { name: 'd', nodeName: 'n3' },
      ],
    });
    const c = clientOf(d);
    // Ascending room: fullest first among Ready on the busiest node (n1 has no Allocated; n2 has one but only c).
    const r1 = await c.allocate({ namespace: 'default', gameServerSelectors: [{ counters: { rooms: { minAvailable: '1' } } }], priorities: [{ type: 'Counter', key: 'rooms', order: 'Ascending' }] } as never);
    assert.equal(r1.gameServerName, 'b');
    // Now n1 has one Allocated: Packed prefers it; a list selector narrows to a.
    const r2 = await c.allocate({ namespace: 'default', gameServerSelectors: [{ lists: { players: { containsValue: 'p1' } } }], lists: { players: { addValues: ['p2', 'p3'] } }, counters: { rooms: { action: { value: 'Decrement' }, amount: { value: '5' } } } } as never);
    assert.equal(r2.gameServerName, 'a');
    assert.deepEqual(d.gameServers[0]!.lists?.players?.values, ['p1', 'p2'], 'cut to capacity');
    assert.equal(d.gameServers[0]!.counters?.rooms?.count, 0, 'clamped at 0');
    // Allocated state selector re-allocates an Allocated GameServer (c), Packed puts Allocated first.
    const r3 = await c.allocate({ namespace: 'default', gameServerSelectors: [{ gameServerState: 'ALLOCATED', counters: { rooms: { minCount: '9' } } }] } as never);
    assert.equal(r3.gameServerName, 'c');
    // Distributed with Descending priority: most room first among Ready (only d left, without the key: last).
    const r4 = await c.allocate({ namespace: 'default', scheduling: 'Distributed' } as never);
    assert.equal(r4.gameServerName, 'd');
  });

  test('validation: raw code 422 on gRPC, HTTP 500 with code 422 on REST', async (t) => {
    const d = await start(t, { batchWaitMs: 10, gameServers: [{ name: 'v' }] });
    const c = clientOf(d);
    const err = await caught<AllocatorError>(c.allocate({ namespace: 'default', counters: { rooms: { action: { value: 'Increment' }, amount: { value: '-5' } } } } as never));
    assert.equal(err.code, 422);
    assert.match(err.details, /is invalid: spec\.counters\[rooms\]\.amount.*%!\(EXTRA/);
    const r = await rest(d, { namespace: 'default', gameServerSelectors: [{ counters: { rooms: { minCount: '-1' } } }] });
    assert.equal(r.status, 500);
    assert.equal(r.body.code, 422);
    const empty = await rest(d, { namespace: 'nowhere' });
    assert.equal(empty.status, 429);
    assert.equal(d.gameServers[0]!.state ?? 'Ready', 'Ready');
  });

  test('no idempotency: the same idempotency key twice allocates twice', async (t) => {
    const d = await start(t, { batchWaitMs: 10, gameServers: [{ name: 'i1' }, { name: 'i2' }] });
    const c = clientOf(d);
    const a = await c.allocate({ namespace: 'default' }, { idempotencyKey: 'same' });
    const b = await c.allocate({ namespace: 'default' }, { idempotencyKey: 'same' });
    assert.notEqual(a.gameServerName, b.gameServerName);
  });

  test('modes: allocate-then-hang, allocate-then-reset and refuse-tls', async (t) => {
    const d = await start(t, { batchWaitMs: 10, gameServers: [{ name: 'm1' }, { name: 'm2' }, { name: 'm3' }], mode: 'allocate-then-hang' });
    const c = clientOf(d);
    const hung = await caught<AllocatorError>(c.allocate({ namespace: 'default' }, { deadline: 300 }));
    assert.equal(hung.codeName, 'DEADLINE_EXCEEDED');
    assert.equal(d.gameServers.filter((g) => g.state === 'Allocated').length, 1);
    d.mode = 'allocate-then-reset';
    const reset = await caught<AllocatorError>(c.allocate({ namespace: 'default' }, { deadline: 2_000 }));
    assert.equal(reset.codeName, 'INTERNAL');
    assert.match(reset.details, /RST_STREAM/);
    assert.equal(d.gameServers.filter((g) => g.state === 'Allocated').length, 2);
    const refused = await start(t, { gameServers: [{ name: 'r' }], mode: 'refuse-tls' });
    const err = await caught<AllocatorError>(clientOf(refused).allocate({ namespace: 'default' }, { deadline: 2_000 }));
    assert.equal(err.codeName, 'UNAVAILABLE');
    assert.equal(refused.calls.length, 0);
    assert.equal(refused.handshakes, 0);
  });
});
