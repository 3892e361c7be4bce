// Admission control: a bound on calls in flight (OVERLOADED) and a token bucket per client
// identity (RATE_LIMITED), both UNAVAILABLE and never RESOURCE_EXHAUSTED; refusals allocate nothing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Admission } from '../../src/server/admission.ts';
import { AllocationError } from '../../src/allocation/errors.ts';
import { AllocatorError } from '../../src/client/index.ts';
import { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { startGateway } from '../helpers/gateway.ts';
import { auditLedger, snapshotMemory } from './ledger.ts';

const reasonOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as AllocationError).reason;
  }
  return 'admitted';
};

describe('Admission (unit)', () => {
  test('refuses beyond maxInFlight with OVERLOADED; a release frees a slot; release is idempotent', () => {
    const a = new Admission({ maxInFlight: 2, perClientRps: 0 });
    const r1 = a.admit('a');
    a.admit('b');
    assert.equal(reasonOf(() => a.admit('c')), 'OVERLOADED');
    r1();
    r1();
    assert.equal(a.inFlight, 1);
    assert.equal(reasonOf(() => a.admit('c')), 'admitted');
    assert.equal(a.refused.overloaded, 1);
  });

  test('token bucket per identity: burst, then the rate; identities do not share buckets', () => {
    let now = 0;
    const a = new Admission({ maxInFlight: 0, perClientRps: 10, perClientBurst: 3, now: () => now });
    for (let i = 0; i < 3; i++) a.admit('a')();
    assert.equal(reasonOf(() => a.admit('a')), 'RATE_LIMITED');
    assert.equal(reasonOf(() => a.admit('b')), 'admitted');
    now += 100; // one token at 10/s
    assert.equal(reasonOf(() => a.admit('a')), 'admitted');
    assert.equal(reasonOf(() => a.admit('a')), 'RATE_LIMITED');
    now += 10_000;
    for (let i = 0; i < 3; i++) a.admit('a')();
    assert.equal(reasonOf(() => a.admit('a')), 'RATE_LIMITED');
  });

  test('buckets are bounded: a flood of identities keeps at most maxTrackedClients', () => {
    const a = new Admission({ maxInFlight: 0, perClientRps: 1, perClientBurst: 1, maxTrackedClients: 100, now: () => 0 });
    a.admit('first')();
    for (let i = 0; i < 10_000; i++) a.admit(`id-${i}`)();
    // 'first' was evicted, so it starts with a fresh bucket; recent ones are still limited.
    assert.equal(reasonOf(() => a.admit('first')), 'admitted');
    assert.equal(reasonOf(() => a.admit('id-9999')), 'RATE_LIMITED');
  });
});

/** A memory store whose writes take `delayMs`, so calls pile up in flight. */
class SlowStore extends MemoryStore {
  readonly #delayMs: number;
  constructor(initial: GameServer[], delayMs: number) {
    super(initial);
    this.#delayMs = delayMs;
  }
  override async update(next: GameServer, signal: AbortSignal): Promise<GameServer> {
    await new Promise((r) => setTimeout(r, this.#delayMs));
    return await super.update(next, signal);
  }
}

describe('admission at both doors', () => {
  test('beyond maxInFlight: UNAVAILABLE reason OVERLOADED (gRPC) / 503 (REST); the ledger balances', async (t) => {
    const certs = devCerts(t);
    const store = new SlowStore(readyPool(300), 50);
    const gw = await startGateway(t, { certs, store, config: { admission: { maxInFlight: 8, perClientShare: 1 } } }); // one identity may fill the bound here
    const before = snapshotMemory(store);
    const clients = Array.from({ length: 4 }, () => gw.client());
    const results = await Promise.allSettled(
      Array.from({ length: 120 }, (_, i) =>
        i % 4 === 0
          ? gw.rest({ namespace: 'default' }).then((r) => (r.status === 200 ? r.body.gameServerName : Promise.reject(r)))
          : clients[i % 4]!.allocate({ namespace: 'default' }, { deadline: 20_000 }).then((r) => r.gameServerName),
      ),
    );
    const told = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    assert.ok(refused.length > 0, 'expected some calls to be shed');
    for (const e of refused) {
      if (e instanceof AllocatorError) {
        assert.equal(e.codeName, 'UNAVAILABLE');
        assert.equal(e.reason, 'OVERLOADED');
      } else {
        assert.equal(e.status, 503, JSON.stringify(e.body));
        assert.equal(e.body.details[0].reason, 'OVERLOADED');
      }
    }
    const audit = auditLedger({ before, after: snapshotMemory(store), told });
    assert.equal(audit.doubles, 0);
    assert.equal(audit.lost, 0);
    assert.equal(audit.reported, told.length);
    // Shed calls are summarised in the log, not one line each.
    const shedLines = gw.logs.filter((l) => l.outcome === 'OVERLOADED');
    assert.ok(shedLines.length >= 1 && shedLines.length < refused.length, `${shedLines.length} log lines for ${refused.length} shed calls`);
  });

  test('per-client rate limit: the noisy identity gets RATE_LIMITED, another identity is unaffected', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: readyPool(200), config: { admission: { perClientRps: 5, perClientBurst: 5 } } });
    const noisy = gw.client();
    const quiet = gw.client(certs.leaf('quiet-client', { san: 'URI:spiffe://allocator-gateway/quiet' }));
    const t0 = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => noisy.allocate({ namespace: 'default' }, { deadline: 5_000 })));
    const seconds = (performance.now() - t0) / 1000;
    const limited = results.filter((r) => r.status === 'rejected' && (r.reason as AllocatorError).reason === 'RATE_LIMITED');
    // The bucket admits its burst plus 5/s over the interval the calls actually took (measured:
    // a loaded machine stretches it), never more; the rest are RATE_LIMITED.
    const admitted = results.filter((r) => r.status === 'fulfilled').length;
    assert.ok(admitted <= 5 + Math.ceil(5 * seconds), `${admitted} of 30 admitted in ${seconds.toFixed(2)} s (burst 5, 5/s)`);
    assert.ok(limited.length >= 1, `${limited.length} of 30 rate limited`);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as AllocatorError).codeName, 'UNAVAILABLE');
    assert.equal((await quiet.allocate({ namespace: 'default' }, { deadline: 5_000 })).source, 'local');
    // The REST door shares the bucket. One call found it refilled on a loaded machine (the 30 above
    // took 2.3 s); ten at once exceed whatever refilled meanwhile (burst 5).
    const rests = await Promise.all(Array.from({ length: 10 }, () => gw.rest({ namespace: 'default' })));
    const rest = rests.find((r) => r.status === 503);
    assert.ok(rest, `no REST call rate limited: ${rests.map((r) => r.status).join(' ')}`);
    assert.equal(rest.body.details[0].reason, 'RATE_LIMITED');
    assert.match(rest.body.details[0].metadata.identity, /test-client/);
  });
});

describe('Admission: per-identity share (unit)', () => {
  test('one identity holds at most its share of maxInFlight (RATE_LIMITED); others still get the rest; releases return it', () => {
    const a = new Admission({ maxInFlight: 8, perClientShare: 0.25, perClientRps: 0 });
    assert.equal(a.perClientMaxInFlight, 2);
    const r1 = a.admit('noisy');
    a.admit('noisy');
    assert.equal(reasonOf(() => a.admit('noisy')), 'RATE_LIMITED');
    for (let i = 0; i < 2; i++) a.admit('b');
    for (let i = 0; i < 2; i++) a.admit(null);
    assert.equal(reasonOf(() => a.admit(null)), 'RATE_LIMITED', 'callers without an identity share one allowance');
    a.admit('c');
    a.admit('d');
    assert.equal(reasonOf(() => a.admit('e')), 'OVERLOADED');
    r1();
    assert.equal(reasonOf(() => a.admit('noisy')), 'admitted');
    assert.equal(a.refused.overShare, 2);
    assert.equal(new Admission({ maxInFlight: 3, perClientShare: 0.1, perClientRps: 0 }).perClientMaxInFlight, 1, 'at least one call');
    assert.equal(new Admission({ maxInFlight: 8, perClientShare: 1, perClientRps: 0 }).perClientMaxInFlight, Infinity);
  });
});
