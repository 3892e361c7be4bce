// Many callers racing for few GameServers: each GameServer goes to exactly one caller.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AllocatorError } from '../../src/client/index.ts';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { startGateway } from '../helpers/gateway.ts';

test('1,000 concurrent Allocates over 200 Ready GameServers: exactly 200 succeed, no name twice', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs, gameServers: readyPool(200, { nodes: 8 }) });
  // Several channels, as many matchmaker replicas would use.
  const clients = Array.from({ length: 8 }, () => gw.client());
  const results = await Promise.allSettled(
    Array.from({ length: 1_000 }, (_, i) =>
      i % 5 === 0
        ? gw.rest({ namespace: 'default' }).then((r) => (r.status === 200 ? r.body.gameServerName : Promise.reject(r.body)))
        : clients[i % clients.length]!.allocate({ namespace: 'default' }, { deadline: 20_000 }).then((r) => r.gameServerName),
    ),
  );
  const names = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value);
  const refusals = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
  assert.equal(names.length, 200);
  assert.equal(new Set(names).size, 200, 'a GameServer was handed out twice');
  assert.equal(refusals.length, 800);
  for (const e of refusals) {
    // gRPC: RESOURCE_EXHAUSTED; REST: the JSON body with code 8.
    assert.equal(e instanceof AllocatorError ? e.codeName : e.code === 8 ? 'RESOURCE_EXHAUSTED' : JSON.stringify(e), 'RESOURCE_EXHAUSTED');
  }
  const allocated = gw.store.list().filter((g) => g.state === 'Allocated').map((g) => g.name).sort();
  assert.deepEqual(allocated, [...names].sort(), 'what callers were told differs from what the cluster holds');
});

test('Distributed spreads picks at random; Packed fills one node first', async (t) => {
  const certs = devCerts(t);
  const [dist, packed] = await Promise.all([
    startGateway(t, { certs, gameServers: readyPool(40, { nodes: 4 }) }),
    startGateway(t, { certs, gameServers: readyPool(40, { nodes: 4 }) }),
  ]);
  const take = async (gw: typeof dist, scheduling: 'Packed' | 'Distributed') => {
    const c = gw.client();
    const names: string[] = [];
    for (let i = 0; i < 8; i++) names.push((await c.allocate({ namespace: 'default', scheduling })).gameServerName);
    return names;
  };
  const d = await take(dist, 'Distributed');
  const p = await take(packed, 'Packed');
  const nodeOf = (name: string) => Number(name.slice(3)) % 4;
  // Packed: node 0 has the most Ready, then once allocated it leads on Allocated: all 8 from node 0.
  assert.deepEqual(new Set(p.map(nodeOf)), new Set([0]));
  assert.deepEqual(p, [...p].sort());
  // Distributed: 8 uniform picks over 4 nodes land on one node with probability 4·(1/4)^8 ≈ 6e-5.
  assert.ok(new Set(d.map(nodeOf)).size > 1, `Distributed picked only one node: ${d.join(',')}`);
});
