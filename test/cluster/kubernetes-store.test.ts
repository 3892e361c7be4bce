// KubernetesStore against a real kube-apiserver + etcd: the ClusterStore contract, then what only
// a real cluster does (watch latency, API server restarts, 410 relists, deletion, RBAC, etcd stalls).
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesStore, type KubernetesStoreOptions } from '../../src/cluster/kubernetes/kubernetes-store.ts';
import type { StoreLogger } from '../../src/cluster/kubernetes/store-logger.ts';
import { StoreConflict } from '../../src/cluster/store.ts';
import { AllocationError } from '../../src/allocation/errors.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import { controlPlaneBinaries, freePort, startControlPlane, type ControlPlane, type GameServerInit } from './control-plane.ts';
import { eventually, recordingListener, storeContract, type GameServerSeed } from './store-contract.ts';

const bins = controlPlaneBinaries();
const skip = 'missing' in bins ? bins.missing : false;

let cp: ControlPlane | undefined;
let nsCounter = 0;

before(async () => {
  if (skip) return;
  cp = await startControlPlane();
  const t = cp.timings;
  console.log(`control plane up in ${t.totalMs} ms (kube-apiserver ${t.apiServerMs} ms)`);
});
after(async () => {
  await cp?.stop();
});

function plane(): ControlPlane {
  if (cp === undefined) throw new Error('control plane not started');
  return cp;
}

async function freshNamespace(prefix = 'ks'): Promise<string> {
  const ns = `${prefix}-${++nsCounter}-${Math.random().toString(36).slice(2, 6)}`;
  await plane().createNamespace(ns);
  return ns;
}

/** A logger that keeps every line (level, message, fields). */
function memoryLogger(): StoreLogger & { readonly lines: { level: string; message: string; fields: object }[] } {
  const lines: { level: string; message: string; fields: object }[] = [];
  const at = (level: string) => (fields: object, message: string) => void lines.push({ level, message, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function makeStore(t: TestContext, opts: Partial<KubernetesStoreOptions> & { namespaces: string[] }): KubernetesStore {
  const store = new KubernetesStore({ kubeConfig: plane().kubeconfigPath, minBackoffMs: 100, maxBackoffMs: 1_000, ...opts });
  t.after(() => store.close());
  return store;
}

function seedInit(s: GameServerSeed): GameServerInit {
  const init: { -readonly [K in keyof GameServerInit]: GameServerInit[K] } = { name: s.name, state: s.state };
  if (s.labels) init.labels = s.labels;
  if (s.annotations) init.annotations = s.annotations;
  if (s.nodeName !== undefined) init.nodeName = s.nodeName;
  if (s.address !== undefined) init.address = s.address;
  if (s.ports) init.ports = s.ports;
  if (s.counters) init.counters = s.counters;
  if (s.lists) init.lists = s.lists;
  return init;
}

storeContract(
  'KubernetesStore (real kube-apiserver)',
  async (t) => {
    const ns = await freshNamespace('contract');
    const store = new KubernetesStore({ kubeConfig: plane().kubeconfigPath, namespaces: [ns], minBackoffMs: 100 });
    t.after(() => store.close());
    return {
      store,
      namespace: ns,
      async seed(s) {
        const existing = await plane().getGameServer(s.namespace, s.name);
        if (existing !== undefined) await plane().deleteGameServer(s.namespace, s.name);
        await plane().createGameServer(s.namespace, seedInit(s));
      },
      async remove(namespace, name) {
        await plane().deleteGameServer(namespace, name);
      },
    };
  },
  { skip },
);

describe('KubernetesStore on a real API server', { skip }, () => {
  test('a GameServer created already Ready after start() is in the cache at once', async (t) => {
    const ns = await freshNamespace();
    const store = makeStore(t, { namespaces: [ns] });
    await store.start();
    assert.equal(store.size, 0);
    const l = recordingListener();
    store.subscribe(l);
    const t0 = performance.now();
    const created = await plane().createGameServer(ns, { name: 'late', state: 'Ready', ports: [{ name: 'p', port: 7100 }] });
    const gs = await eventually('late GameServer cached', () => store.get(ns, 'late'), 5_000);
    console.log(`watch latency: ${(performance.now() - t0).toFixed(1)} ms from POST to cache`);
    assert.equal(gs.state, 'Ready');
    assert.equal(gs.resourceVersion, created.metadata.resourceVersion);
    assert.deepEqual(l.calls, [`upsert ${ns}/late ${gs.resourceVersion}`]);
  });

  test('synced only when every namespace is listed; other namespaces are not cached', async (t) => {
    const a = await freshNamespace();
    const b = await freshNamespace();
    const other = await freshNamespace();
    await plane().createGameServer(a, { name: 'in-a' });
    await plane().createGameServer(b, { name: 'in-b' });
    await plane().createGameServer(other, { name: 'elsewhere' });
    const store = makeStore(t, { namespaces: [a, b] });
    assert.equal(store.synced, false);
    const starting = store.start();
    assert.equal(store.synced, false);
    await starting;
    assert.equal(store.synced, true);
    assert.ok(store.get(a, 'in-a'));
    assert.ok(store.get(b, 'in-b'));
    assert.equal(store.get(other, 'elsewhere'), undefined);
    assert.equal(store.size, 2);
  });

  test('close() before the first list completes rejects start() instead of leaving it pending', async () => {
    // an API server that is not there: the first list can never complete
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${await freePort()}`, caData: Buffer.from(plane().caPem).toString('base64'), skipTLSVerify: false }],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const store = new KubernetesStore({ kubeConfig: kc, namespaces: ['default'], minBackoffMs: 50 });
    const starting = store.start();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(store.synced, false);
    await store.close();
    await assert.rejects(starting, /closed before it synced/);
  });

  test('the initial list pages through many GameServers', async (t) => {
    const ns = await freshNamespace();
    await Promise.all(Array.from({ length: 60 }, (_, i) => plane().createGameServer(ns, { name: `gs-${i}` })));
    const store = makeStore(t, { namespaces: [ns], listPageSize: 7 });
    await store.start();
    assert.equal(store.size, 60);
  });

  test('update() writes the full object back: spec, unknown fields and managedFields survive', async (t) => {
    const ns = await freshNamespace();
    const spec = {
      container: 'game',
      ports: [{ name: 'default', portPolicy: 'Dynamic', containerPort: 7654, hostPort: 7001, protocol: 'UDP' }],
      health: { disabled: false, periodSeconds: 5, failureThreshold: 3 },
      sdkServer: { logLevel: 'Info', grpcPort: 9357 },
      counters: { rooms: { count: 0, capacity: 10 } },
      template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'game', image: 'example.invalid/g:1' }] } },
    };
    await plane().createGameServer(ns, { name: 'rich', spec, players: { count: 1, capacity: 8 }, counters: { rooms: { count: 1, capacity: 10 } } });
    await plane().patchGameServer(ns, 'rich', { status: { reservedUntil: null, eviction: { safe: 'Always' }, players: { ids: ['p1'] } } });
    const before = await plane().getGameServer(ns, 'rich');
    const store = makeStore(t, { namespaces: [ns] });
    await store.start();
    const gs = store.get(ns, 'rich');
    assert.ok(gs);
    assert.equal(gs.resourceVersion, before.metadata.resourceVersion);
    assert.deepEqual(gs.players, { count: 1, capacity: 8 });
    const stored = await store.update(
      { ...gs, state: 'Allocated', labels: { fleet: 'f' }, counters: { rooms: { count: 2, capacity: 10 } }, players: { count: 2, capacity: 8 } },
      new AbortController().signal,
    );
    const raw = await plane().getGameServer(ns, 'rich');
    assert.equal(raw.metadata.resourceVersion, stored.resourceVersion);
    assert.deepEqual(raw.spec, before.spec);
    assert.equal(raw.metadata.uid, before.metadata.uid);
    assert.deepEqual(raw.metadata.labels, { fleet: 'f' });
    assert.equal(raw.status.state, 'Allocated');
    assert.deepEqual(raw.status.eviction, { safe: 'Always' });
    assert.deepEqual(raw.status.players, { count: 2, capacity: 8, ids: ['p1'] });
    assert.deepEqual(raw.status.counters, { rooms: { count: 2, capacity: 10 } });
    assert.ok(Array.isArray(raw.metadata.managedFields) && raw.metadata.managedFields.length > 0, 'managedFields kept');
  });

  test('a change made outside the store between read and write is a StoreConflict (HTTP 409)', async (t) => {
    const ns = await freshNamespace();
    await plane().createGameServer(ns, { name: 'raced' });
    const store = makeStore(t, { namespaces: [ns] });
    await store.start();
    const gs = store.get(ns, 'raced');
    assert.ok(gs);
    // pause the watch's view: write through the admin API and update before the event can matter
    store.subscribe({ upsert() {}, remove() {} });
    await plane().patchGameServer(ns, 'raced', { metadata: { labels: { other: 'writer' } } });
    await assert.rejects(store.update({ ...gs, state: 'Allocated' }, new AbortController().signal), StoreConflict);
    const after = await eventually('the outside change', () => (store.get(ns, 'raced')?.labels['other'] === 'writer' ? store.get(ns, 'raced') : undefined));
    const ok = await store.update({ ...after, state: 'Allocated' }, new AbortController().signal);
    assert.equal(ok.state, 'Allocated');
    assert.deepEqual(ok.labels, { other: 'writer' });
  });

  test('a GameServer being deleted is cached with deleting: true, then removed', async (t) => {
    const ns = await freshNamespace();
    const created = await plane().createGameServer(ns, { name: 'doomed' });
    await plane().patchGameServer(ns, 'doomed', { metadata: { finalizers: ['test.gateway/hold'] } });
    const store = makeStore(t, { namespaces: [ns] });
    await store.start();
    assert.equal(store.get(ns, 'doomed')?.deleting, false);
    assert.ok(created);
    await plane().deleteGameServer(ns, 'doomed');
    const deleting = await eventually('deleting flag', () => (store.get(ns, 'doomed')?.deleting ? store.get(ns, 'doomed') : undefined));
    assert.equal(deleting.deleting, true);
    await plane().patchGameServer(ns, 'doomed', { metadata: { finalizers: null } });
    await eventually('removal', () => store.get(ns, 'doomed') === undefined);
  });

  test('changes after an API server restart still arrive (watch re-established, warned)', async (t) => {
    const ns = await freshNamespace();
    await plane().createGameServer(ns, { name: 'before' });
    const logger = memoryLogger();
    const store = makeStore(t, { namespaces: [ns], logger });
    await store.start();
    const l = recordingListener();
    store.subscribe(l);
    const t0 = Date.now();
    await plane().restartApiServer();
    const restartMs = Date.now() - t0;
    await plane().patchGameServer(ns, 'before', { status: { state: 'Allocated' } });
    await plane().createGameServer(ns, { name: 'after' });
    await eventually('the patch after restart', () => store.get(ns, 'before')?.state === 'Allocated', 15_000);
    await eventually('the create after restart', () => store.get(ns, 'after'), 15_000);
    const warnings = logger.lines.filter((x) => x.level === 'warn');
    console.log(`API server restart took ${restartMs} ms; store logged ${warnings.length} warnings: ${warnings.map((w) => w.message).join(' | ')}`);
    assert.ok(warnings.length > 0, 'the outage is logged at warn');
    // each names its watch: the namespace, or "*" for the cluster-wide one that counts GameServers per node
    assert.ok(warnings.every((w) => [ns, '*'].includes((w.fields as { namespace?: string }).namespace ?? '')));
    assert.ok(logger.lines.some((x) => x.level === 'info' && /working again/.test(x.message)), 'recovery is logged');
    // and the store still writes
    const gs = store.get(ns, 'after');
    assert.ok(gs);
    assert.equal((await store.update({ ...gs, state: 'Allocated' }, new AbortController().signal)).state, 'Allocated');
  });

  test('an expired watch (410 Gone) relists: reset, then the cluster as it is now', async (t) => {
    // A second API server on the same etcd keeps changing things while the store's API server is
    // down; etcd is compacted, so the store's resourceVersion is gone when its server returns.
    const cpA = plane();
    const cpB = await startControlPlane({ etcd: cpA.etcd, etcdPrefix: cpA.etcdPrefix });
    t.after(() => cpB.stop());
    const ns = await freshNamespace();
    await cpA.createGameServer(ns, { name: 'kept' });
    await cpA.createGameServer(ns, { name: 'deleted-while-down' });
    await cpA.createGameServer(ns, { name: 'changed-while-down' });
    const logger = memoryLogger();
    const store = makeStore(t, { namespaces: [ns], logger });
    await store.start();
    const l = recordingListener();
    store.subscribe(l);
    l.calls.length = 0;

    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string): void => void marks.push(`${what} +${Date.now() - t0} ms`);
    await cpA.stopApiServer();
    mark('A stopped');
    await cpB.deleteGameServer(ns, 'deleted-while-down');
    await cpB.patchGameServer(ns, 'changed-while-down', { status: { state: 'Allocated' } });
    await cpB.createGameServer(ns, { name: 'created-while-down' });
    for (let i = 0; i < 20; i++) await cpB.patchGameServer(ns, 'kept', { metadata: { annotations: { n: String(i) } } });
    mark('B wrote');
    const rev = await cpA.etcd.compact();
    await cpA.startApiServer();
    mark('A started');

    await eventually('the relist', () => store.get(ns, 'created-while-down'), 20_000);
    mark('relisted');
    assert.equal(store.get(ns, 'deleted-while-down'), undefined);
    assert.equal(store.get(ns, 'changed-while-down')?.state, 'Allocated');
    assert.equal(store.get(ns, 'kept')?.annotations['n'], '19');
    const relisted = logger.lines.some((x) => /410 Gone/.test(x.message));
    console.log(`410 relist: ${marks.join(', ')}; etcd compacted at ${rev}; listener: ${l.calls.map((c) => c.split(' ')[0]).join(',')}`);
    assert.ok(relisted, 'the store relisted after 410 Gone');
    assert.equal(l.calls[0], 'reset', 'listeners are reset before the relisted contents');
    assert.deepEqual(
      [...l.last.keys()].sort(),
      [`${ns}/changed-while-down`, `${ns}/created-while-down`, `${ns}/kept`],
      'the listener holds exactly the cluster after the relist',
    );
  });

  test('a write stalled on etcd is bounded by writeTimeoutMs, not by the caller: NOT_READY, ambiguous; the store recovers when etcd resumes', async (t) => {
    const ns = await freshNamespace();
    await plane().createGameServer(ns, { name: 'stalled' });
    const store = makeStore(t, { namespaces: [ns], writeTimeoutMs: 500 });
    await store.start();
    const gs = store.get(ns, 'stalled');
    assert.ok(gs);
    plane().pauseEtcd();
    t.after(() => plane().resumeEtcd());
    const t0 = performance.now();
    // the caller gives up after 100 ms: a sent write is not abandoned with it (its outcome must be learned)
    const err = await store.update({ ...gs, state: 'Allocated' }, AbortSignal.timeout(100)).catch((e: unknown) => e);
    const elapsed = performance.now() - t0;
    assert.ok(err instanceof AllocationError, String(err));
    assert.deepEqual([err.reason, err.metadata['ambiguous']], ['NOT_READY', 'true']);
    assert.match(err.message, /no answer within 500 ms.*may still be applied/);
    // the answer's 500 ms, then up to 500 ms of reading back
    assert.ok(elapsed >= 900 && elapsed < 10_000, `bounded by the write timeout (${elapsed.toFixed(0)} ms)`);
    plane().resumeEtcd();
    // the aborted PUT may still land once etcd resumes (the API server had it): either way the
    // cache converges, and a write from the converged version succeeds
    let written: GameServer | undefined;
    for (let attempt = 0; written === undefined; attempt++) {
      const fresh = store.get(ns, 'stalled');
      assert.ok(fresh);
      try {
        written = await store.update({ ...fresh, annotations: { attempt: String(attempt) } }, AbortSignal.timeout(5_000));
      } catch (err) {
        if (!(err instanceof StoreConflict) || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const latest = await plane().getGameServer(ns, 'stalled');
    assert.equal(latest.metadata.resourceVersion, written.resourceVersion);
  });

  test('works as the service-account user once granted list/watch/update on gameservers', async (t) => {
    const ns = await freshNamespace();
    await plane().createGameServer(ns, { name: 'sa' });
    const logger = memoryLogger();
    const store = makeStore(t, { namespaces: [ns], logger, kubeConfig: plane().saKubeconfigPath });
    const starting = store.start();
    await eventually('a forbidden warning', () => logger.lines.some((x) => x.level === 'warn' && /forbidden/i.test(String((x.fields as { err?: string }).err))), 5_000);
    assert.equal(store.synced, false);
    await plane().grant(`gw-store-${ns}`, [{ apiGroups: ['agones.dev'], resources: ['gameservers'], verbs: ['get', 'list', 'watch', 'update'] }]);
    await starting;
    const gs = store.get(ns, 'sa');
    assert.ok(gs);
    assert.equal((await store.update({ ...gs, state: 'Allocated' }, new AbortController().signal)).state, 'Allocated');
  });

  test('accepts a loaded KubeConfig and rate-limits writes (qps/burst)', async (t) => {
    const ns = await freshNamespace();
    await plane().createGameServer(ns, { name: 'limited' });
    const kc = new KubeConfig();
    kc.loadFromFile(plane().kubeconfigPath);
    const store = makeStore(t, { namespaces: [ns], kubeConfig: kc, qps: 10, burst: 1 });
    await store.start();
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) {
      const gs = store.get(ns, 'limited');
      assert.ok(gs);
      await store.update({ ...gs, annotations: { i: String(i) } }, new AbortController().signal);
    }
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 270, `4 writes at 10 qps, burst 1, take >= 300 ms (took ${elapsed.toFixed(0)} ms)`);
  });
});
