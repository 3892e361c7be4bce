// Issue 12 item 5: namespaces named by callers exhaust nothing. Policy watches run only in the
// configured namespaces, idempotency Leases are written only where the gateway serves, and a
// namespace whose policies the API server refuses is retried with a backoff, not in a loop.
// Observed from outside: the API server's own request metrics and objects. Needs the control
// plane (test/cluster/build.sh); skipped with the reason otherwise.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { controlPlaneBinaries, startControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { devCerts } from '../helpers/certs.ts';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { caught } from '../helpers/gateway.ts';
import { policy } from '../multicluster/fixtures.ts';
import type { AllocatorError } from '../../src/client/index.ts';

const bins = controlPlaneBinaries();
const skip = 'missing' in bins ? bins.missing : false;
const NS = 'game';
const certs = devCerts({ after });
const cleanups: (() => Promise<void> | void)[] = [];
const owner = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
let cp: ControlPlane;

/** Sum of an API-server counter/gauge over the series whose labels include all of `labels`. */
async function apiMetric(name: string, labels: Record<string, string>): Promise<number> {
  const r = await cp.request('GET', '/metrics');
  let sum = 0;
  for (const line of r.text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

before(async () => {
  if (skip) return;
  cp = await startControlPlane();
  await cp.createNamespace(NS);
  await cp.createNamespace('other');
  for (let i = 0; i < 4; i++) await cp.createGameServer(NS, { name: `gs-${i}` });
  await cp.createGameServer('other', { name: 'other-0' });
  const r = await cp.request('POST', `/apis/multicluster.agones.dev/v1/namespaces/${NS}/gameserverallocationpolicies`, policy('local', { priority: 1, namespace: NS, policyNamespace: NS }));
  assert.equal(r.status, 201, r.text);
});

after(async () => {
  await Promise.all(cleanups.map((f) => f()));
  await cp?.stop();
});

describe('caller-chosen namespaces', { skip }, () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess(owner, { certs, name: 'gw', config: { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [NS] } } });
  });

  test('multi-cluster requests in 300 made-up namespaces start no watch and leave the real namespace served', async () => {
    const client = gw.client();
    const watchesBefore = await apiMetric('apiserver_longrunning_requests', { resource: 'gameserverallocationpolicies', verb: 'WATCH' });
    for (let i = 0; i < 300; i++) {
      const err = await caught<AllocatorError>(client.allocate({ namespace: `made-up-${i}`, multiClusterSetting: { enabled: true } }, { deadline: 5_000 }));
      assert.equal(err.reason, 'NO_POLICY', `made-up-${i}: ${err.codeName} ${err.details}`);
    }
    const watchesAfter = await apiMetric('apiserver_longrunning_requests', { resource: 'gameserverallocationpolicies', verb: 'WATCH' });
    assert.ok(watchesAfter <= watchesBefore, `policy watches grew from ${watchesBefore} to ${watchesAfter}`);
    assert.ok(watchesAfter <= 1, `${watchesAfter} policy watches for one configured namespace`);
    const ok = await client.allocate({ namespace: NS, multiClusterSetting: { enabled: true } }, { deadline: 5_000 });
    assert.match(ok.gameServerName, /^gs-/);
  });

  test('keyed requests in a namespace the gateway does not serve write no idempotency Lease', async () => {
    const client = gw.client();
    const posts = () => apiMetric('apiserver_request_total', { resource: 'leases', verb: 'POST' });
    const before = await posts();
    for (let i = 0; i < 20; i++) {
      const err = await caught<AllocatorError>(client.allocate({ namespace: 'other' }, { deadline: 5_000, idempotencyKey: `k-${i}` }));
      assert.equal(err.reason, 'NO_GAME_SERVER', err.details);
    }
    assert.equal(await posts(), before, 'Lease creations for an unserved namespace');
    const leases = await cp.request('GET', '/apis/coordination.k8s.io/v1/namespaces/other/leases');
    assert.equal(JSON.parse(leases.text).items.length, 0);
    // In the served namespace the key is recorded as before.
    await client.allocate({ namespace: NS }, { deadline: 5_000, idempotencyKey: 'served' });
    assert.ok((await posts()) > before);
  });
});

describe('a namespace whose policies the API server refuses', { skip }, () => {
  test('is re-listed with a growing backoff, not every 250 ms', async () => {
    // The service-account user may read GameServers, Leases and Secrets, but not policies.
    await cp.grant('no-policies', [
      { apiGroups: ['agones.dev'], resources: ['gameservers'], verbs: ['get', 'list', 'watch', 'update'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'create', 'update', 'delete'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
    ]);
    const started = Date.now();
    const gw = await startGatewayProcess(owner, { certs, name: 'restricted', config: { cluster: { kind: 'kubernetes', kubeconfig: cp.saKubeconfigPath, namespaces: [NS] } } });
    const err = await caught<AllocatorError>(gw.client().allocate({ namespace: NS, multiClusterSetting: { enabled: true } }, { deadline: 2_000 }));
    // The request waits for the policies until its deadline (issue 13 item 5), then NOT_READY (UNAVAILABLE) — which a
    // gRPC caller whose own deadline passed at the same moment sees as DEADLINE_EXCEEDED.
    assert.ok(err.codeName === 'UNAVAILABLE' || err.codeName === 'DEADLINE_EXCEEDED', err.details);
    // The API server's refusal names users and resources: it goes to the log, not to the caller (item 8).
    assert.doesNotMatch(`${err.details} ${JSON.stringify(err.errorInfo)}`, /forbidden|system:serviceaccount|HTTP 403/);
    await new Promise((r) => setTimeout(r, 8_000));
    // Each refused list is one 'retrying' line in the gateway's log (policies and secrets watches).
    const lists = gw.logs.filter((l) => l.msg === 'multi-cluster watch failed; retrying' && String(l.err).includes('gameserverallocationpolicies')).length;
    const seconds = (Date.now() - started) / 1000;
    // A 250 ms loop makes ≥ 4 a second; a backoff doubling from 250 ms to 10 s makes ~6 in the first 8 s.
    assert.ok(lists >= 1, 'the refused list was tried');
    assert.ok(lists <= 12, `${lists} refused policy lists in ${seconds.toFixed(1)} s`);
  });
});
