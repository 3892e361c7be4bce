// Both metric sets on a running gateway: ours (gateway_*) and Agones' allocation histogram under
// agones-allocator's name, labels and buckets, so Agones' Grafana panels read this gateway too.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { simpleFleet } from '../helpers/gateway-process.ts';
import { caught, startGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/prometheus.ts';

describe('metrics', async () => {
  const certs = devCerts({ after });
  const gw = await startGateway({ after }, { certs, fleet: simpleFleet('blue', 3) });

  test('agones_gameserver_allocations_duration_seconds by fleet, status, scheduling and multi-cluster', async () => {
    const c = gw.client();
    await c.allocate({ namespace: 'default', scheduling: 'Distributed' });
    await c.allocate({ namespace: 'default' });
    const none = await caught(c.allocate({ namespace: 'default', gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'red' } }] }));
    assert.equal(none.reason, 'NO_GAME_SERVER');
    const m = await scrape(gw.opsUrl);
    const h = 'agones_gameserver_allocations_duration_seconds_count';
    assert.equal(m.sum(h, { status: 'Allocated', fleet_name: 'blue', scheduling_strategy: 'Distributed', is_multicluster: 'false', cluster_name: 'local' }), 1);
    assert.equal(m.sum(h, { status: 'Allocated', fleet_name: 'blue', scheduling_strategy: 'Packed' }), 1);
    assert.equal(m.sum(h, { status: 'UnAllocated', fleet_name: 'none', scheduling_strategy: 'Packed', is_multicluster: 'false' }), 1);
    // Agones' buckets, not ours: its dashboards' histogram_quantile panels read these le values.
    const les = m.samples.filter((s) => s.name === 'agones_gameserver_allocations_duration_seconds_bucket' && s.labels.status === 'UnAllocated').map((s) => s.labels.le);
    assert.deepEqual(les, ['0', '0.01', '0.025', '0.05', '0.075', '0.1', '0.25', '0.5', '0.75', '1', '2', '3', '+Inf']);
    // Writes per local allocation (no competing writer here: one each), as agones-allocator's retry histogram.
    const r = 'agones_gameserver_allocations_retry_total';
    assert.equal(m.sum(`${r}_count`, { status: 'Success', fleet_name: 'blue' }), 2);
    assert.equal(m.sum(`${r}_bucket`, { status: 'Success', le: '1', scheduling_strategy: 'Distributed' }), 1);
    assert.equal(m.sum(`${r}_sum`), 2);
    // Ours still count every call, once.
    assert.equal(m.sum('gateway_allocations_total', { outcome: 'OK', source: 'local' }), 2);
    assert.equal(m.sum('gateway_allocations_total', { outcome: 'NO_GAME_SERVER' }), 1);
  });

  test('a request refused before decoding is status error with unknown fields none', async () => {
    const r = await gw.rest(undefined, { raw: '{"namespace": nope' });
    assert.equal(r.status, 400);
    const m = await scrape(gw.opsUrl);
    assert.equal(m.sum('agones_gameserver_allocations_duration_seconds_count', { status: 'error', scheduling_strategy: 'none', is_multicluster: 'none' }), 1);
  });

  test('gateway_game_servers counts the cache per namespace and state at scrape time; gateway_cache_synced is 1', async () => {
    const m = await scrape(gw.opsUrl);
    assert.equal(m.sum('gateway_game_servers', { namespace: 'default', state: 'Ready' }), 1);
    assert.equal(m.sum('gateway_game_servers', { namespace: 'default', state: 'Allocated' }), 2);
    assert.equal(m.sum('gateway_cache_synced'), 1);
    assert.ok(m.families.has('gateway_lost_answer_writes_total'));
  });
});
