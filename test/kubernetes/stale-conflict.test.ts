// KubernetesStore against a scripted API server (plain HTTP on loopback): what a write does when
// the API server refuses it for a reason that is not the caller's (conflict with a newer stored
// copy the watch has not delivered yet; outage; 5xx).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { AllocationError } from '../../src/allocation/errors.ts';
import { KubernetesStore } from '../../src/cluster/kubernetes/kubernetes-store.ts';
import { StoreConflict, type StoreListener } from '../../src/cluster/store.ts';
import type { GameServer } from '../../src/allocation/types.ts';

const NS = 'stale';

function object(name: string, rv: string, state = 'Ready'): object {
  return { apiVersion: 'agones.dev/v1', kind: 'GameServer', metadata: { name, namespace: NS, resourceVersion: rv }, spec: {}, status: { state, address: '10.0.0.1', ports: [{ name: 'p', port: 7000 }], nodeName: 'n' } };
}

interface FakeApi {
  /** Sends one watch event to every open watch. */
  event(type: string, obj: object): void;
  /** The status the next PUTs get (and their body). */
  putAnswer: { status: number; body: object };
  puts: number;
  port: number;
  /** Open watch connections. */
  watching(): number;
  /** Stops listening and drops every connection (later connections are refused). */
  close(): Promise<void>;
}

/** Lists `items`, holds watches open (events on demand), answers PUTs with putAnswer. */
async function fakeApi(t: TestContext, items: object[]): Promise<FakeApi> {
  const watches = new Set<http.ServerResponse>();
  const api: FakeApi = {
    event(type, obj) {
      for (const w of watches) w.write(`${JSON.stringify({ type, object: obj })}\n`);
    },
    putAnswer: { status: 409, body: { kind: 'Status', status: 'Failure', reason: 'Conflict', code: 409, message: 'the object has been modified' } },
    puts: 0,
    port: 0,
    watching: () => watches.size,
    close: async () => {
      for (const w of watches) w.destroy();
      server.closeAllConnections();
      if (server.listening) await new Promise((r) => server.close(r));
    },
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'GameServerList', metadata: { resourceVersion: '10' }, items }));
      return;
    }
    if (req.method === 'PUT') {
      api.puts++;
      req.resume();
      req.on('end', () => res.writeHead(api.putAnswer.status, { 'content-type': 'application/json' }).end(JSON.stringify(api.putAnswer.body)));
      return;
    }
    res.writeHead(405).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api.port = (server.address() as { port: number }).port;
  t.after(() => api.close());
  return api;
}

function kubeConfig(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

function recorder(): StoreListener & { calls: string[] } {
  const calls: string[] = [];
  return { calls, upsert: (gs) => void calls.push(`upsert ${gs.name} ${gs.resourceVersion} ${gs.state}`), remove: (_ns, name) => void calls.push(`remove ${name}`) };
}

async function started(t: TestContext, api: FakeApi): Promise<{ store: KubernetesStore; l: ReturnType<typeof recorder> }> {
  const store = new KubernetesStore({ kubeConfig: kubeConfig(api.port), namespaces: [NS], minBackoffMs: 20, maxBackoffMs: 50 });
  t.after(() => store.close());
  const l = recorder();
  store.subscribe(l);
  await store.start();
  await waitFor(() => api.watching() > 0);
  return { store, l };
}

const never = new AbortController().signal;

test('a 409 withholds the stale copy from listeners until the watch brings the newer version', async (t) => {
  const api = await fakeApi(t, [object('x', '5'), object('y', '6')]);
  const { store, l } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  assert.deepEqual(l.calls, ['upsert x 5 Ready', 'upsert y 6 Ready']);
  await assert.rejects(store.update({ ...x, state: 'Allocated' }, never), StoreConflict);
  assert.deepEqual(l.calls.slice(2), ['remove x'], 'stale x dropped: no other request spends a write on it');
  // a second listener does not get it either
  const late = recorder();
  store.subscribe(late);
  assert.deepEqual(late.calls, ['upsert y 6 Ready']);
  // the newer version arrives: shown again, as it now is
  api.event('MODIFIED', object('x', '12', 'Allocated'));
  await waitFor(() => l.calls.length === 4);
  assert.deepEqual(l.calls.slice(3), ['upsert x 12 Allocated']);
  assert.deepEqual(late.calls.slice(1), ['upsert x 12 Allocated']);
  assert.equal(store.get(NS, 'x')?.resourceVersion, '12');
});

test('a 409 after the watch already delivered the newer version hides nothing', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store, l } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  api.event('MODIFIED', object('x', '7'));
  await waitFor(() => store.get(NS, 'x')?.resourceVersion === '7');
  await assert.rejects(store.update({ ...x, state: 'Allocated' }, never), StoreConflict);
  assert.deepEqual(l.calls, ['upsert x 5 Ready', 'upsert x 7 Ready']);
});

test('an unreachable or failing API server is NOT_READY (UNAVAILABLE), ambiguous unless the write surely never arrived', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  const cases: [number, string][] = [[503, 'false'], [429, 'false'], [500, 'true'], [504, 'true']];
  for (const [status, ambiguous] of cases) {
    api.putAnswer = { status, body: { kind: 'Status', code: status, message: 'nope' } };
    const err = await store.update({ ...x, state: 'Allocated' }, never).catch((e: unknown) => e);
    assert.ok(err instanceof AllocationError, `HTTP ${status}: ${String(err)}`);
    assert.equal(err.reason, 'NOT_READY');
    assert.equal(err.metadata['ambiguous'], ambiguous, `HTTP ${status}`);
    assert.doesNotMatch(err.message, /127\.0\.0\.1/, 'no internal address in a caller-facing message');
  }
  // a 403 is a deployment problem, not an outage: it stays an API error (INTERNAL for the caller, logged)
  api.putAnswer = { status: 403, body: { kind: 'Status', code: 403, reason: 'Forbidden', message: 'forbidden' } };
  const forbidden = await store.update({ ...x, state: 'Allocated' }, never).catch((e: unknown) => e);
  assert.ok(!(forbidden instanceof AllocationError) && (forbidden as { status?: number }).status === 403);
});

test('a refused connection is NOT_READY and not ambiguous (the write never left)', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  await api.close();
  await new Promise((r) => setTimeout(r, 50)); // the client notices its kept-alive socket is gone
  const err = await store.update({ ...x, state: 'Allocated' }, never).catch((e: unknown) => e);
  assert.ok(err instanceof AllocationError, String(err));
  assert.equal(err.reason, 'NOT_READY');
  assert.equal(err.metadata['ambiguous'], 'false');
});

async function waitFor(f: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
