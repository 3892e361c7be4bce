// The test control plane itself: start, CRDs, a GameServer round trip, an API server restart.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { controlPlaneBinaries, startControlPlane, type ControlPlane } from './control-plane.ts';

const bins = controlPlaneBinaries();
const skip = 'missing' in bins ? bins.missing : false;

describe('test control plane', { skip }, () => {
  let cp: ControlPlane;
  const ns = 'cp-test';

  before(async () => {
    cp = await startControlPlane();
    const t = cp.timings;
    console.log(`control plane up in ${t.totalMs} ms (pki ${t.pkiMs}, etcd ${t.etcdMs}, kube-apiserver ${t.apiServerMs}, CRDs ${t.crdsMs})`);
  });
  after(async () => {
    await cp?.stop();
  });

  test('serves on a loopback port with our CA and writes both kubeconfigs', async () => {
    assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    const version = await cp.request('GET', '/version');
    assert.equal(version.status, 200);
    assert.equal(version.body.gitVersion, 'v1.34.4');
    assert.match(readFileSync(cp.kubeconfigPath, 'utf8'), new RegExp(`server: ${cp.server}`));
    assert.match(readFileSync(cp.saKubeconfigPath, 'utf8'), new RegExp(`token: ${cp.saToken}`));
  });

  test('the CRDs are established with the Agones names', async () => {
    const gs = await cp.request('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gameservers.agones.dev');
    assert.equal(gs.status, 200);
    assert.equal(gs.body.spec.names.kind, 'GameServer');
    assert.equal(gs.body.spec.scope, 'Namespaced');
    assert.deepEqual(gs.body.spec.versions[0].subresources ?? {}, {});
    const policies = await cp.request('GET', '/apis/multicluster.agones.dev/v1/gameserverallocationpolicies');
    assert.equal(policies.status, 200);
  });

  test('the service-account token authenticates but has no rights until granted', async () => {
    const review = await cp.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: cp.saUser, groups: ['system:serviceaccounts'], resourceAttributes: { group: 'agones.dev', resource: 'gameservers', verb: 'list' } },
    });
    assert.equal(review.status, 201);
    assert.equal(review.body.status.allowed, false);
    await cp.grant('gw-test-read-gameservers', [{ apiGroups: ['agones.dev'], resources: ['gameservers'], verbs: ['get', 'list', 'watch'] }]);
    // the RBAC authorizer learns of the binding through its informer: poll briefly
    let allowed = false;
    for (const end = Date.now() + 5_000; !allowed && Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      const again = await cp.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user: cp.saUser, groups: ['system:serviceaccounts'], resourceAttributes: { group: 'agones.dev', resource: 'gameservers', verb: 'list' } },
      });
      allowed = again.body.status.allowed === true;
    }
    assert.equal(allowed, true);
  });

  test('a GameServer round trip survives an API server restart', async () => {
    await cp.createNamespace(ns);
    const created = await cp.createGameServer(ns, {
      name: 'gs-1',
      labels: { 'agones.dev/fleet': 'fleet-a' },
      ports: [{ name: 'default', port: 7001 }],
      nodeName: 'node-a',
      counters: { rooms: { count: 1, capacity: 10 } },
      lists: { players: { capacity: 4, values: ['p1'] } },
    });
    assert.equal(created.status.state, 'Ready');
    const read = await cp.getGameServer(ns, 'gs-1');
    assert.equal(read.metadata.resourceVersion, created.metadata.resourceVersion);
    assert.deepEqual(read.status.counters, { rooms: { count: 1, capacity: 10 } });
    assert.deepEqual(read.status.lists, { players: { capacity: 4, values: ['p1'] } });
    assert.deepEqual(read.status.ports, [{ name: 'default', port: 7001 }]);

    const patched = await cp.patchGameServer(ns, 'gs-1', { status: { state: 'Allocated' } });
    assert.equal(patched.status.state, 'Allocated');

    const pid = cp.apiServerPid;
    const t0 = Date.now();
    await cp.restartApiServer();
    console.log(`kube-apiserver restarted in ${Date.now() - t0} ms`);
    assert.notEqual(cp.apiServerPid, pid);
    const after = await cp.getGameServer(ns, 'gs-1');
    assert.equal(after.status.state, 'Allocated');
    assert.equal(after.metadata.resourceVersion, patched.metadata.resourceVersion);
    const list = await cp.listGameServers(ns);
    assert.deepEqual(list.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['gs-1']);
    assert.equal(await cp.getGameServer(ns, 'absent'), undefined);
  });
});
