// The ClusterStore contract, as a reusable suite: any implementation (memory, Kubernetes) must
// pass the same assertions. Usage:
//   storeContract('MemoryStore', async (t) => { const store = new MemoryStore(); return { store, seed, remove }; });
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { GameServer } from '../../src/allocation/types.ts';
import { StoreConflict, StoreNotFound, type ClusterStore, type StoreListener } from '../../src/cluster/store.ts';

/** A GameServer to put into the backing cluster (not through the store under test). */
export interface GameServerSeed {
  readonly namespace: string;
  readonly name: string;
  readonly state: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly nodeName?: string;
  readonly address?: string;
  readonly ports?: readonly { name: string; port: number }[];
  readonly counters?: Record<string, { count: number; capacity: number }>;
  readonly lists?: Record<string, { capacity: number; values: readonly string[] }>;
}

export interface StoreFixture {
  /** Not started yet; the suite calls start() and close(). */
  readonly store: ClusterStore;
  /** Creates (or replaces) a GameServer in the backing cluster. */
  seed(gs: GameServerSeed): Promise<void>;
  /** Deletes a GameServer from the backing cluster. */
  remove(namespace: string, name: string): Promise<void>;
  /** A namespace the store serves and no other test uses; default "default". */
  readonly namespace?: string;
}

export type StoreFactory = (t: TestContext) => Promise<StoreFixture>;

/** Polls `probe` until it returns a value other than undefined/false (default 10 s). */
export async function eventually<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A listener that records every call as a string ("upsert ns/name rv", "remove ns/name", "reset"). */
export function recordingListener(): StoreListener & { readonly calls: string[]; readonly last: Map<string, GameServer> } {
  const calls: string[] = [];
  const last = new Map<string, GameServer>();
  return {
    calls,
    last,
    upsert(gs) {
      calls.push(`upsert ${gs.namespace}/${gs.name} ${gs.resourceVersion}`);
      last.set(`${gs.namespace}/${gs.name}`, gs);
    },
    remove(namespace, name) {
      calls.push(`remove ${namespace}/${name}`);
      last.delete(`${namespace}/${name}`);
    },
    reset() {
      calls.push('reset');
      last.clear();
    },
  };
}

const full = (namespace: string, name: string): GameServerSeed => ({
  namespace,
  name,
  state: 'Ready',
  labels: { 'agones.dev/fleet': 'fleet-a', tier: 'gold' },
  annotations: { note: 'seeded' },
  nodeName: 'node-1',
  address: '10.0.0.1',
  ports: [{ name: 'default', port: 7001 }],
  counters: { rooms: { count: 1, capacity: 4 } },
  lists: { players: { capacity: 3, values: ['p1'] } },
});

/** Runs the ClusterStore contract against stores made by `makeStore` (one per test). */
export function storeContract(name: string, makeStore: StoreFactory, options: { skip?: string | false } = {}): void {
  describe(`ClusterStore contract: ${name}`, { skip: options.skip ?? false }, () => {
    /** A started store with `names` seeded before start. */
    async function started(t: TestContext, ...names: string[]): Promise<StoreFixture & { ns: string }> {
      const fx = await makeStore(t);
      const ns = fx.namespace ?? 'default';
      for (const n of names) await fx.seed(full(ns, n));
      t.after(() => fx.store.close());
      await fx.store.start();
      return { ...fx, ns };
    }

    test('start() resolves synced, with what existed before in the cache', async (t) => {
      const { store, ns } = await started(t, 'gs-a');
      assert.equal(store.synced, true);
      const gs = store.get(ns, 'gs-a');
      assert.ok(gs, 'gs-a cached');
      assert.equal(gs.namespace, ns);
      assert.equal(gs.name, 'gs-a');
      assert.equal(gs.state, 'Ready');
      assert.notEqual(gs.resourceVersion, '');
      assert.deepEqual(gs.labels, { 'agones.dev/fleet': 'fleet-a', tier: 'gold' });
      assert.deepEqual(gs.annotations, { note: 'seeded' });
      assert.equal(gs.nodeName, 'node-1');
      assert.equal(gs.address, '10.0.0.1');
      assert.deepEqual(gs.ports, [{ name: 'default', port: 7001 }]);
      assert.deepEqual(gs.counters, { rooms: { count: 1, capacity: 4 } });
      assert.deepEqual(gs.lists, { players: { capacity: 3, values: ['p1'] } });
      assert.equal(gs.deleting, false);
      assert.equal(store.get(ns, 'absent'), undefined);
    });

    test('subscribe() replays the cache at once, then streams changes until unsubscribed', async (t) => {
      const fx = await started(t, 'gs-a', 'gs-b');
      const { store, ns } = fx;
      const l = recordingListener();
      const unsubscribe = store.subscribe(l);
      assert.deepEqual(
        [...l.calls].sort(),
        [`upsert ${ns}/gs-a ${store.get(ns, 'gs-a')?.resourceVersion}`, `upsert ${ns}/gs-b ${store.get(ns, 'gs-b')?.resourceVersion}`].sort(),
        'replayed synchronously',
      );
      await fx.seed(full(ns, 'gs-c'));
      await eventually('upsert of gs-c', () => l.last.get(`${ns}/gs-c`));
      assert.deepEqual(l.last.get(`${ns}/gs-c`), store.get(ns, 'gs-c'));
      await fx.remove(ns, 'gs-a');
      await eventually('remove of gs-a', () => l.calls.includes(`remove ${ns}/gs-a`));
      assert.equal(store.get(ns, 'gs-a'), undefined);
      unsubscribe();
      const before = l.calls.length;
      await fx.seed(full(ns, 'gs-d'));
      await eventually('gs-d cached', () => store.get(ns, 'gs-d'));
      assert.equal(l.calls.length, before, 'no calls after unsubscribe');
    });

    test('update() writes, resolves with a new resourceVersion, and get() sees it at once', async (t) => {
      const fx = await started(t, 'gs-a');
      const { store, ns } = fx;
      const l = recordingListener();
      store.subscribe(l);
      const gs = store.get(ns, 'gs-a');
      assert.ok(gs);
      const next: GameServer = {
        ...gs,
        state: 'Allocated',
        labels: { ...gs.labels, allocated: 'yes' },
        annotations: { ...gs.annotations, 'agones.dev/last-allocated': '2026-01-01T00:00:00Z' },
        counters: { rooms: { count: 2, capacity: 4 } },
        lists: { players: { capacity: 3, values: ['p1', 'p2'] } },
      };
      const stored = await store.update(next, new AbortController().signal);
      assert.notEqual(stored.resourceVersion, gs.resourceVersion);
      assert.equal(stored.state, 'Allocated');
      assert.deepEqual(stored.labels, { 'agones.dev/fleet': 'fleet-a', tier: 'gold', allocated: 'yes' });
      assert.equal(stored.annotations['agones.dev/last-allocated'], '2026-01-01T00:00:00Z');
      assert.deepEqual(stored.counters, { rooms: { count: 2, capacity: 4 } });
      assert.deepEqual(stored.lists, { players: { capacity: 3, values: ['p1', 'p2'] } });
      assert.deepEqual(stored.ports, gs.ports);
      assert.equal(stored.nodeName, gs.nodeName);
      assert.equal(stored.address, gs.address);
      assert.deepEqual(store.get(ns, 'gs-a'), stored, 'cached immediately, before any watch event');
      assert.ok(l.calls.includes(`upsert ${ns}/gs-a ${stored.resourceVersion}`), 'listener told at once');
      // a second write from the new version succeeds at once (no waiting for the watch)
      const again = await store.update({ ...stored, state: 'Ready' }, new AbortController().signal);
      assert.equal(again.state, 'Ready');
      // Late watch events for gs-a arrive before the event of a later write from outside: once
      // that one is cached, any duplicate would have shown (ordering, not a fixed sleep).
      await fx.seed(full(ns, 'gs-canary'));
      await eventually('gs-canary cached', () => store.get(ns, 'gs-canary'));
      assert.equal(l.calls.filter((c) => c === `upsert ${ns}/gs-a ${stored.resourceVersion}`).length, 1, 'no duplicate upsert from a late watch event');
      assert.equal(store.get(ns, 'gs-a')?.resourceVersion, again.resourceVersion, 'no regression to an older version');
    });

    test('update() with a stale resourceVersion rejects with StoreConflict and changes nothing', async (t) => {
      const { store, ns } = await started(t, 'gs-a');
      const v1 = store.get(ns, 'gs-a');
      assert.ok(v1);
      const v2 = await store.update({ ...v1, labels: { ...v1.labels, first: 'yes' } }, new AbortController().signal);
      await assert.rejects(store.update({ ...v1, state: 'Allocated' }, new AbortController().signal), StoreConflict);
      assert.equal(store.get(ns, 'gs-a')?.resourceVersion, v2.resourceVersion);
      assert.equal(store.get(ns, 'gs-a')?.state, 'Ready');
    });

    test('update() of a deleted GameServer rejects with StoreNotFound', async (t) => {
      const fx = await started(t, 'gs-a');
      const gs = fx.store.get(fx.ns, 'gs-a');
      assert.ok(gs);
      await fx.remove(fx.ns, 'gs-a');
      await assert.rejects(fx.store.update({ ...gs, state: 'Allocated' }, new AbortController().signal), StoreNotFound);
      await assert.rejects(
        fx.store.update({ ...gs, name: 'never-existed' }, new AbortController().signal),
        StoreNotFound,
      );
    });

    test('update() with an aborted signal rejects with the signal reason and writes nothing', async (t) => {
      const { store, ns } = await started(t, 'gs-a');
      const gs = store.get(ns, 'gs-a');
      assert.ok(gs);
      const ac = new AbortController();
      const reason = new Error('caller gave up');
      ac.abort(reason);
      await assert.rejects(store.update({ ...gs, state: 'Allocated' }, ac.signal), (err) => err === reason);
      const timeout = AbortSignal.abort(new DOMException('deadline', 'TimeoutError'));
      await assert.rejects(store.update({ ...gs, state: 'Allocated' }, timeout), { name: 'TimeoutError' });
      assert.equal(store.get(ns, 'gs-a')?.resourceVersion, gs.resourceVersion);
      const ok = await store.update({ ...gs, state: 'Allocated' }, new AbortController().signal);
      assert.equal(ok.state, 'Allocated', 'the version was still current: nothing had been written');
    });
  });
}
