// deploy/crds against a real API server: structural, round-trips what the gateway writes,
// rejects wrong shapes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { controlPlaneBinaries, gameServerObject, loadCrds, startControlPlane, type ControlPlane, type Json } from './control-plane.ts';

const bins = controlPlaneBinaries();
const skip = 'missing' in bins ? bins.missing : false;

const ns = 'crd-test';
const gsPath = `/apis/agones.dev/v1/namespaces/${ns}/gameservers`;
const policyPath = `/apis/multicluster.agones.dev/v1/namespaces/${ns}/gameserverallocationpolicies`;

function policy(name: string, spec: Json): Json {
  return { apiVersion: 'multicluster.agones.dev/v1', kind: 'GameServerAllocationPolicy', metadata: { name }, spec };
}

test('deploy/crds holds exactly the two CRDs with the Agones names', async () => {
  const crds = await loadCrds();
  const names = crds.map((c) => c.metadata.name).sort();
  assert.deepEqual(names, ['gameserverallocationpolicies.multicluster.agones.dev', 'gameservers.agones.dev']);
  for (const crd of crds) {
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.deepEqual(crd.spec.versions.map((v: Json) => [v.name, v.served, v.storage, v.subresources]), [['v1', true, true, undefined]]);
  }
});

describe('CRDs on a real API server', { skip }, () => {
  let cp: ControlPlane;

  before(async () => {
    cp = await startControlPlane();
    await cp.createNamespace(ns);
  });
  after(async () => {
    await cp?.stop();
  });

  test('schemas are structural (no NonStructuralSchema condition)', async () => {
    for (const name of ['gameservers.agones.dev', 'gameserverallocationpolicies.multicluster.agones.dev']) {
      const r = await cp.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const bad = (r.body.status.conditions as Json[]).filter((c) => c.type === 'NonStructuralSchema' && c.status === 'True');
      assert.deepEqual(bad, [], name);
    }
  });

  test('a GameServer keeps every field the gateway reads, and unknown spec/status fields', async () => {
    const obj = gameServerObject({
      name: 'full',
      labels: { 'agones.dev/fleet': 'f' },
      annotations: { 'agones.dev/last-allocated': '2026-01-01T00:00:00.000000001Z' },
      address: '10.0.0.7',
      addresses: [{ type: 'InternalIP', address: '10.0.0.7' }, { type: 'Hostname', address: 'node-7' }],
      ports: [{ name: 'game', port: 7777 }, { name: 'query', port: 7778 }],
      nodeName: 'node-7',
      counters: { rooms: { count: 2, capacity: 9_007_199_254_740_991 } },
      lists: { players: { capacity: 3, values: ['a', 'b'] } },
      players: { count: 1, capacity: 8 },
    });
    obj.spec.health = { disabled: true, periodSeconds: 5 };
    obj.spec.counters = { rooms: { count: 0, capacity: 10 } };
    obj.spec.sdkServer = { logLevel: 'Info' };
    obj.status.reservedUntil = null;
    obj.status.eviction = { safe: 'Never' };
    obj.status.players.ids = ['p1'];
    const r = await cp.request('POST', gsPath, obj);
    assert.equal(r.status, 201, r.text);
    const stored = await cp.getGameServer(ns, 'full');
    assert.deepEqual(stored.status, obj.status);
    assert.deepEqual(stored.spec, obj.spec);
    assert.deepEqual(stored.metadata.labels, obj.metadata.labels);
    assert.deepEqual(stored.metadata.annotations, obj.metadata.annotations);
  });

  const badGameServers: [string, (o: Json) => void, RegExp][] = [
    ['status.counters.x.count is a string', (o) => (o.status.counters = { x: { count: 'abc', capacity: 1 } }), /status\.counters\.x\.count/],
    ['status.ports[0].port is a string', (o) => (o.status.ports = [{ name: 'default', port: 'x' }]), /status\.ports\[0\]\.port/],
    ['status.state is a number', (o) => (o.status.state = 3), /status\.state/],
    ['status.addresses is an object', (o) => (o.status.addresses = { type: 'InternalIP' }), /status\.addresses/],
    ['status.lists.l.values holds a number', (o) => (o.status.lists = { l: { capacity: 2, values: [1] } }), /status\.lists\.l\.values\[0\]/],
    ['status.lists.l.capacity above 1000', (o) => (o.status.lists = { l: { capacity: 1001, values: [] } }), /status\.lists\.l\.capacity/],
    ['status.counters.c.count negative', (o) => (o.status.counters = { c: { count: -1, capacity: 1 } }), /status\.counters\.c\.count/],
    ['status.players.capacity is a string', (o) => (o.status.players = { count: 0, capacity: 'many' }), /status\.players\.capacity/],
    ['spec.ports[0].containerPort is a string', (o) => (o.spec.ports[0].containerPort = 'x'), /spec\.ports\[0\]\.containerPort/],
  ];
  for (const [what, mutate, field] of badGameServers) {
    test(`GameServer rejected when ${what}`, async () => {
      const obj = gameServerObject({ name: `bad-${Math.random().toString(36).slice(2, 8)}` });
      mutate(obj);
      const r = await cp.request('POST', gsPath, obj);
      assert.equal(r.status, 422, r.text);
      assert.match(r.body.message, field);
    });
  }

  test('an update of the wrong shape is rejected too (PUT and merge-patch)', async () => {
    const created = await cp.createGameServer(ns, { name: 'upd', counters: { rooms: { count: 0, capacity: 4 } } });
    created.status.counters.rooms.count = 'abc';
    const put = await cp.request('PUT', `${gsPath}/upd`, created);
    assert.equal(put.status, 422, put.text);
    const patch = await cp.request('PATCH', `${gsPath}/upd`, { status: { ports: [{ name: 'p', port: 'x' }] } }, 'application/merge-patch+json');
    assert.equal(patch.status, 422, patch.text);
  });

  test('a GameServerAllocationPolicy with every field is stored as written', async () => {
    const spec = {
      priority: 1,
      weight: 100,
      connectionInfo: {
        clusterName: 'cluster-b',
        allocationEndpoints: ['127.0.0.1:8443', 'b.example:443'],
        secretName: 'allocator-b-client',
        namespace: 'default',
        serverCa: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64'),
      },
    };
    const r = await cp.request('POST', policyPath, policy('full', spec));
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.body.spec, spec);
    const local = await cp.request('POST', policyPath, policy('local', { priority: 0, weight: 0, connectionInfo: { namespace: ns } }));
    assert.equal(local.status, 201, local.text);
  });

  const badPolicies: [string, Json, RegExp][] = [
    ['priority is missing', { weight: 1, connectionInfo: { namespace: 'x' } }, /spec\.priority: Required value/],
    ['weight is missing', { priority: 1, connectionInfo: { namespace: 'x' } }, /spec\.weight: Required value/],
    ['connectionInfo.namespace is missing', { priority: 1, weight: 1, connectionInfo: { clusterName: 'b' } }, /spec\.connectionInfo\.namespace: Required value/],
    ['priority is negative', { priority: -1, weight: 1, connectionInfo: { namespace: 'x' } }, /spec\.priority/],
    ['priority is a string', { priority: 'high', weight: 1, connectionInfo: { namespace: 'x' } }, /spec\.priority/],
    ['weight is negative', { priority: 1, weight: -5, connectionInfo: { namespace: 'x' } }, /spec\.weight/],
    ['allocationEndpoints is empty', { priority: 1, weight: 1, connectionInfo: { namespace: 'x', allocationEndpoints: [] } }, /spec\.connectionInfo\.allocationEndpoints/],
    ['serverCa is not base64', { priority: 1, weight: 1, connectionInfo: { namespace: 'x', serverCa: '-----BEGIN ***' } }, /spec\.connectionInfo\.serverCa/],
  ];
  for (const [what, spec, field] of badPolicies) {
    test(`GameServerAllocationPolicy rejected when ${what}`, async () => {
      const r = await cp.request('POST', policyPath, policy(`bad-${Math.random().toString(36).slice(2, 8)}`, spec));
      assert.equal(r.status, 422, r.text);
      assert.match(r.body.message, field);
    });
  }
});
