// Issue 12 item 2: the gateway's own annotations cannot be written through a request, and an
// idempotent repeat returns only an allocation that this key made for this request.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AllocatorError } from '../../src/client/index.ts';
import { idempotencyHash } from '../../src/router/idempotency.ts';
import { devCerts } from '../helpers/certs.ts';
import { gameServer } from '../helpers/game-servers.ts';
import { caught, startGateway } from '../helpers/gateway.ts';

const KEY_ANNOTATION = 'allocator-gateway.dev/idempotency-key';
const CLUSTER_ANNOTATION = 'allocator-gateway.dev/cluster';

const pool = () => [
  gameServer({ name: 'casual-1', labels: { mode: 'casual' } }),
  gameServer({ name: 'casual-2', labels: { mode: 'casual' } }),
  gameServer({ name: 'ranked-1', labels: { mode: 'ranked' } }),
  gameServer({ name: 'ranked-2', labels: { mode: 'ranked' } }),
];

describe('reserved annotations', () => {
  for (const key of [KEY_ANNOTATION, CLUSTER_ANNOTATION, 'Allocator-Gateway.dev/idempotency-key']) {
    test(`metadata.annotations[${key}] is refused on both doors and nothing is allocated`, async (t) => {
      const certs = devCerts(t);
      const gw = await startGateway(t, { certs, gameServers: pool() });
      const request = { namespace: 'default', metadata: { annotations: { [key]: 'forged' } } };
      const err = await caught<AllocatorError>(gw.client().allocate(request, { deadline: 5_000 }));
      assert.equal(err.codeName, 'INVALID_ARGUMENT', err.details);
      assert.equal(err.reason, 'INVALID_FIELD');
      assert.match(err.details, /reserved for the gateway/);
      const rest = await gw.rest(request);
      assert.equal(rest.status, 400, JSON.stringify(rest.body));
      assert.equal(gw.store.list().filter((g) => g.namespace === 'default' && g.state === 'Allocated').length, 0);
      // The deprecated twin is checked the same way.
      const viaPatch = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', metaPatch: { annotations: { [key]: 'x' } } }, { deadline: 5_000 }));
      assert.equal(viaPatch.codeName, 'INVALID_ARGUMENT');
    });
  }

  test('a caller cannot plant a GameServer that another caller\'s idempotency key returns', async (t) => {
    const certs = devCerts(t);
    const victim = certs.leaf('victim', { san: 'URI:spiffe://tenant/victim' });
    const gw = await startGateway(t, { certs, gameServers: pool() });
    // The key hash is computable: namespace, the victim's certificate identity, a guessable key.
    for (const identity of ['spiffe://tenant/victim', 'uri:spiffe://tenant/victim']) {
      const planted = idempotencyHash('default', identity, 'match-1');
      const plant = await caught<AllocatorError>(
        gw.client().allocate({ namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'casual' } }], metadata: { annotations: { [KEY_ANNOTATION]: planted } } }, { deadline: 5_000 }),
      );
      assert.equal(plant.codeName, 'INVALID_ARGUMENT');
    }
    const got = await gw.client(victim).allocate({ namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'ranked' } }] }, { deadline: 5_000, idempotencyKey: 'match-1' });
    assert.match(got.gameServerName, /^ranked-/);
  });

  test('the serving cluster cannot be spoofed in the response or the audit line', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: pool() });
    const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', metadata: { annotations: { [CLUSTER_ANNOTATION]: 'us-east-prod' } } }, { deadline: 5_000 }));
    assert.equal(err.codeName, 'INVALID_ARGUMENT');
    const ok = await gw.client().allocate({ namespace: 'default' }, { deadline: 5_000 });
    assert.equal(ok.metadata?.annotations?.[CLUSTER_ANNOTATION], undefined);
    const audit = gw.logs.filter((l) => l.audit === true && l.outcome === 'OK');
    assert.deepEqual(audit.map((l) => l.cluster), ['local']);
  });
});

describe('idempotent repeats', () => {
  test('a repeat returns only what this key made: a re-readied GameServer allocated to another request is not returned', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: [gameServer({ name: 'a' }), gameServer({ name: 'b' })] });
    const client = gw.client();
    const first = await client.allocate({ namespace: 'default' }, { deadline: 5_000, idempotencyKey: 'k1' });
    assert.equal(first.gameServerName, 'a');
    // The game on `a` ends and the GameServer is Ready again; another (unkeyed) request takes it.
    const a = gw.store.list().find((g) => g.name === 'a')!;
    await gw.store.update({ ...a, state: 'Ready' }, AbortSignal.timeout(5_000));
    const other = await client.allocate({ namespace: 'default' }, { deadline: 5_000 });
    assert.equal(other.gameServerName, 'a');
    assert.equal(other.metadata?.annotations?.[KEY_ANNOTATION], undefined, 'the earlier key is not carried into a new allocation');
    const repeat = await client.allocate({ namespace: 'default' }, { deadline: 5_000, idempotencyKey: 'k1' });
    assert.notEqual(repeat.gameServerName, 'a', 'the key must not return a GameServer now allocated to another request');
  });

  test('the same key with a different request is a conflict, not the earlier result; the same request gets the same GameServer', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: pool() });
    const client = gw.client();
    const ranked = { namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'ranked' } }] };
    const first = await client.allocate(ranked, { deadline: 5_000, idempotencyKey: 'match-7' });
    assert.match(first.gameServerName, /^ranked-/);
    const again = await client.allocate({ ...ranked, gameServerSelectors: [{ matchLabels: { mode: 'ranked' } }] }, { deadline: 5_000, idempotencyKey: 'match-7' });
    assert.equal(again.gameServerName, first.gameServerName);
    const err = await caught<AllocatorError>(client.allocate({ namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'casual' } }] }, { deadline: 5_000, idempotencyKey: 'match-7' }));
    assert.equal(err.codeName, 'FAILED_PRECONDITION', err.details);
    assert.equal(err.reason, 'IDEMPOTENCY_KEY_REUSED');
    const rest = await gw.rest({ namespace: 'default', gameServerSelectors: [{ matchLabels: { mode: 'casual' } }] }, { headers: { 'idempotency-key': 'match-7' } });
    assert.equal(rest.status, 422, JSON.stringify(rest.body));
    assert.equal(gw.store.list().filter((g) => g.namespace === 'default' && g.state === 'Allocated').length, 1, 'exactly one GameServer allocated for the key');
  });

  test('calls at once with one key and different requests: none is handed a GameServer of the other request', async (t) => {
    const certs = devCerts(t);
    const gw = await startGateway(t, { certs, gameServers: pool() });
    const client = gw.client();
    // Many calls at once on two keys, half asking for ranked and half for casual, so some arrive
    // while the first call of their key is still being routed.
    const calls = Array.from({ length: 40 }, (_, i) => {
      const mode = i % 2 === 0 ? 'ranked' : 'casual';
      return client
        .allocate({ namespace: 'default', gameServerSelectors: [{ matchLabels: { mode } }] }, { deadline: 5_000, idempotencyKey: `k-${i % 4 < 2 ? 'a' : 'b'}` })
        .then((r) => ({ mode, got: String(r.gameServerName) }), (e: AllocatorError) => ({ mode, got: String(e.reason) }));
    });
    const answers = await Promise.all(calls);
    for (const a of answers) {
      if (a.got === 'IDEMPOTENCY_KEY_REUSED') continue;
      assert.ok(a.got.startsWith(`${a.mode}-`), `a ${a.mode} request was handed ${a.got}`);
    }
    assert.ok(answers.some((a) => a.got === 'IDEMPOTENCY_KEY_REUSED'));
  });
});
