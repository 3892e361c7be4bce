// KubernetesStore against a scripted API server on loopback (plain HTTP/1.1 as kubectl proxy
// serves, or TLS with HTTP/2 as a kube-apiserver does) for what a real one does only by accident: a conflict with a newer stored copy the watch has not delivered yet,
// an outage, a 5xx, a write applied whose answer is lost (the API server crashed after etcd
// committed it), a write that stalls. No allocation may be lost: the store reads the object
// back, and sends the same write again (same precondition: only one can apply) to find out.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { AllocationError } from '../../src/allocation/errors.ts';
import { KubernetesStore } from '../../src/cluster/kubernetes/kubernetes-store.ts';
import { StoreConflict, StoreNotFound, type StoreListener } from '../../src/cluster/store.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import { devCerts, type TestCerts } from '../helpers/certs.ts';

const NS = 'stale';

type Obj = { metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> }; status: { state: string } } & Record<string, unknown>;

function object(name: string, rv: string, state = 'Ready'): Obj {
  return { apiVersion: 'agones.dev/v1', kind: 'GameServer', metadata: { name, namespace: NS, resourceVersion: rv }, spec: {}, status: { state, address: '10.0.0.1', ports: [{ name: 'p', port: 7000 }], nodeName: 'n' } } as Obj;
}

/** What the scripted API server does with a PUT. */
type PutScript =
  | { kind: 'answer'; status: number } // answer with a Status, apply nothing
  | { kind: 'apply-then-drop' } // store the object, then cut the connection before answering
  | { kind: 'drop' } // cut the connection, apply nothing
  | { kind: 'reset' } // HTTP/2 only: reset the stream with NO_ERROR before answering, apply nothing
  | { kind: 'apply-then-cut-answer'; how: 'drop' | 'reset' } // HTTP/2 only: store it, send half the answer, then cut the connection or reset the stream (NO_ERROR)
  | { kind: 'other-writer-then-drop' } // someone else's change lands, ours does not; no answer
  | { kind: 'apply' } // as a real API server: applies it if the resourceVersion matches (else 409) and answers
  | { kind: 'hang' }; // never answers, applies nothing

interface FakeApi {
  readonly objects: Map<string, Obj>;
  put: PutScript;
  /** What the PUTs after the next one do (default: the same as `put`). */
  then?: PutScript;
  puts: number;
  /** Status for GETs of one object (200 = serve it). */
  getStatus: number;
  gets: number;
  port: number;
  /** The TLS server's certificates (https only). */
  readonly certs?: TestCerts;
  event(type: string, obj: object): void;
  watching(): number;
  close(): Promise<void>;
}

let rv = 100;

/** http: HTTP/1.1 (the gateway's path to kubectl proxy); https: TLS, and HTTP/2 for requests, as kube-apiserver serves them. */
type Transport = 'http' | 'https';

async function fakeApi(t: TestContext, items: Obj[], transport: Transport = 'http'): Promise<FakeApi> {
  const watches = new Set<http.ServerResponse>();
  const objects = new Map(items.map((o) => [o.metadata.name, o]));
  const status = (res: http.ServerResponse, code: number, message: string) =>
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', status: 'Failure', code, message, reason: code === 409 ? 'Conflict' : '' }));
  // HTTP/2 requests arrive through node's compatibility API, with the same shape
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const h2 = (req as unknown as { stream?: http2.ServerHttp2Stream }).stream;
    const url = new URL(req.url ?? '/', 'http://x');
    const name = url.pathname.split('/gameservers/')[1];
    if (req.method === 'GET' && url.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    if (req.method === 'GET' && name === undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'GameServerList', metadata: { resourceVersion: '10' }, items: [...objects.values()] }));
      return;
    }
    if (req.method === 'GET') {
      api.gets++;
      const o = objects.get(decodeURIComponent(name!));
      if (api.getStatus !== 200) return void status(res, api.getStatus, 'unavailable');
      if (!o) return void status(res, 404, 'not found');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(o));
      return;
    }
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as Obj;
        const p = api.put;
        api.puts++;
        if (api.then) api.put = api.then;
        if (p.kind === 'answer') return void status(res, p.status, `scripted ${p.status}`);
        if (p.kind === 'hang') return;
        if (p.kind === 'reset') {
          if (!h2) throw new Error('reset is an HTTP/2 script');
          return void h2.close(http2.constants.NGHTTP2_NO_ERROR);
        }
        if (p.kind === 'apply') {
          const cur = objects.get(body.metadata.name);
          if (!cur) return void status(res, 404, 'not found');
          if (cur.metadata.resourceVersion !== body.metadata.resourceVersion) return void status(res, 409, 'the object has been modified');
          const stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } };
          objects.set(body.metadata.name, stored);
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stored));
        }
        if (p.kind === 'apply-then-cut-answer') {
          if (!h2) throw new Error('apply-then-cut-answer is an HTTP/2 script');
          const stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } };
          objects.set(body.metadata.name, stored);
          res.writeHead(200, { 'content-type': 'application/json' });
          const text = JSON.stringify(stored);
          res.write(text.slice(0, text.length >> 1), () => setTimeout(() => {
            if (p.how === 'reset') h2.close(http2.constants.NGHTTP2_NO_ERROR);
            else (h2.session!.socket as { destroy(): void }).destroy();
          }, 20));
          return;
        }
        if (p.kind === 'apply-then-drop') objects.set(body.metadata.name, { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } });
        if (p.kind === 'other-writer-then-drop') {
          const cur = objects.get(body.metadata.name)!;
          objects.set(body.metadata.name, { ...cur, metadata: { ...cur.metadata, resourceVersion: String(++rv), labels: { other: 'writer' } } });
        }
        // the whole connection, as a crashed API server leaves it (on HTTP/2 req.socket would reset only the stream)
        if (h2) (h2.session!.socket as { destroy(): void }).destroy();
        else req.socket.destroy();
      });
      return;
    }
    res.writeHead(405).end();
  };
  const certs = transport === 'https' ? devCerts(t) : undefined;
  const server = certs
    ? http2.createSecureServer({ cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile), allowHTTP1: true }, handler as never)
    : http.createServer(handler);
  const sockets = new Set<{ destroy(): void }>();
  server.on(certs ? 'secureConnection' : 'connection', (s: { destroy(): void; once(e: 'close', f: () => void): void }) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const api: FakeApi = {
    objects,
    put: { kind: 'answer', status: 409 },
    puts: 0,
    getStatus: 200,
    gets: 0,
    port: 0,
    ...(certs ? { certs } : {}),
    event(type, obj) {
      for (const w of watches) w.write(`${JSON.stringify({ type, object: obj })}\n`);
    },
    watching: () => watches.size,
    close: async () => {
      for (const w of watches) w.destroy();
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise((r) => server.close(r));
    },
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api.port = (server.address() as { port: number }).port;
  t.after(() => api.close());
  return api;
}

function kubeConfig(api: FakeApi): KubeConfig {
  const kc = new KubeConfig();
  const cluster = api.certs
    ? { name: 'c', server: `https://127.0.0.1:${api.port}`, caData: readFileSync(api.certs.caFile).toString('base64') }
    : { name: 'c', server: `http://127.0.0.1:${api.port}`, skipTLSVerify: true };
  kc.loadFromOptions({
    clusters: [cluster],
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

async function started(t: TestContext, api: FakeApi, writeTimeoutMs = 10_000): Promise<{ store: KubernetesStore; l: ReturnType<typeof recorder> }> {
  const store = new KubernetesStore({ kubeConfig: kubeConfig(api), namespaces: [NS], minBackoffMs: 20, maxBackoffMs: 50, writeTimeoutMs });
  t.after(() => store.close());
  const l = recorder();
  store.subscribe(l);
  await store.start();
  await waitFor(() => api.watching() > 0);
  return { store, l };
}

const allocate = (gs: GameServer): GameServer => ({ ...gs, state: 'Allocated', labels: { ...gs.labels, match: 'm1' }, annotations: { 'agones.dev/last-allocated': new Date().toISOString() } });
const never = () => AbortSignal.timeout(5_000);

test('a 409 withholds the stale copy from listeners until the watch brings the newer version', async (t) => {
  const api = await fakeApi(t, [object('x', '5'), object('y', '6')]);
  const { store, l } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  assert.deepEqual(l.calls, ['upsert x 5 Ready', 'upsert y 6 Ready']);
  await assert.rejects(store.update(allocate(x), never()), StoreConflict);
  assert.deepEqual(l.calls.slice(2), ['remove x'], 'stale x dropped: no other request spends a write on it');
  const late = recorder();
  store.subscribe(late);
  assert.deepEqual(late.calls, ['upsert y 6 Ready'], 'a new listener does not get it either');
  api.event('MODIFIED', object('x', '12', 'Allocated'));
  await waitFor(() => l.calls.length === 4);
  assert.deepEqual(l.calls.slice(3), ['upsert x 12 Allocated'], 'shown again, as it now is');
  assert.deepEqual(late.calls.slice(1), ['upsert x 12 Allocated']);
});

test('a 409 after the watch already delivered the newer version hides nothing', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store, l } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  api.event('MODIFIED', object('x', '7'));
  await waitFor(() => store.get(NS, 'x')?.resourceVersion === '7');
  await assert.rejects(store.update(allocate(x), never()), StoreConflict);
  assert.deepEqual(l.calls, ['upsert x 5 Ready', 'upsert x 7 Ready']);
});

test('an overloaded or starting API server (429, 503) is NOT_READY (UNAVAILABLE), not ambiguous; a 403 stays an API error', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  for (const status of [429, 503]) {
    api.put = { kind: 'answer', status };
    const err = await store.update(allocate(x), never()).catch((e: unknown) => e);
    assert.ok(err instanceof AllocationError, `HTTP ${status}: ${String(err)}`);
    assert.deepEqual([err.reason, err.metadata['ambiguous']], ['NOT_READY', 'false']);
    assert.doesNotMatch(err.message, /127\.0\.0\.1/, 'no internal address in a caller-facing message');
  }
  assert.equal(api.gets, 0, 'nothing to settle: the write was refused');
  api.put = { kind: 'answer', status: 403 };
  const forbidden = await store.update(allocate(x), never()).catch((e: unknown) => e);
  assert.ok(!(forbidden instanceof AllocationError) && (forbidden as { status?: number }).status === 403, 'a deployment problem: INTERNAL for the caller, logged');
});

test('500/504 or a dropped connection, object unchanged: the same write is sent again and applies once', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api);
  await sentAgainAndApplied(store, api, [{ kind: 'answer', status: 500 }, { kind: 'answer', status: 504 }, { kind: 'drop' }]);
});

test('over TLS and HTTP/2 (as kube-apiserver serves): a connection cut or a stream reset before the answer is settled the same way, never a raw error', async (t) => {
  const api = await fakeApi(t, [object('x', '5')], 'https');
  const { store } = await started(t, api);
  await sentAgainAndApplied(store, api, [{ kind: 'drop' }, { kind: 'reset' }, { kind: 'answer', status: 500 }]);
});

test('over HTTP/2, the answer cut mid-body (connection cut, or stream reset with NO_ERROR) after the write applied: read back and counted as written', async (t) => {
  const api = await fakeApi(t, [object('x', '5')], 'https');
  const { store } = await started(t, api);
  for (const how of ['drop', 'reset'] as const) {
    const x = store.get(NS, 'x') as GameServer;
    const [gets, puts] = [api.gets, api.puts];
    api.put = { kind: 'apply-then-cut-answer', how };
    api.then = { kind: 'apply' };
    const written = await store.update(allocate(x), never());
    assert.equal(written.state, 'Allocated', how);
    assert.equal(written.resourceVersion, api.objects.get('x')!.metadata.resourceVersion, how);
    assert.ok(api.gets > gets, 'read back');
    assert.equal(api.puts - puts, 1, 'found applied: not sent again');
  }
});

/** Each script in turn fails the first PUT; the store must read back and send the same write again. */
async function sentAgainAndApplied(store: KubernetesStore, api: FakeApi, scripts: readonly PutScript[]): Promise<void> {
  for (const put of scripts) {
    const x = store.get(NS, 'x') as GameServer;
    const [gets, puts] = [api.gets, api.puts];
    api.put = put;
    api.then = { kind: 'apply' };
    const written = await store.update(allocate(x), never());
    assert.equal(written.state, 'Allocated', JSON.stringify(put));
    assert.equal(written.resourceVersion, api.objects.get('x')!.metadata.resourceVersion);
    assert.ok(api.gets > gets, 'read back');
    assert.equal(api.puts - puts, 2, 'sent once more, with the same precondition');
  }
}

test('an unchanged read-back is not proof the write will never land: it is fenced by the same write, never reported "not applied"', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api, 400);
  const x = store.get(NS, 'x') as GameServer;
  api.put = { kind: 'answer', status: 500 }; // every PUT fails: the first may still be applied later
  const err = await store.update(allocate(x), never()).catch((e: unknown) => e);
  assert.ok(err instanceof AllocationError, String(err));
  assert.deepEqual([err.reason, err.metadata['ambiguous']], ['NOT_READY', 'true']);
  assert.ok(api.puts >= 2);
});

test('a write that gets no answer within writeTimeoutMs is settled: the same write applies once', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api, 300);
  const x = store.get(NS, 'x') as GameServer;
  api.put = { kind: 'hang' };
  api.then = { kind: 'apply' };
  const t0 = performance.now();
  const written = await store.update(allocate(x), never());
  assert.equal(written.state, 'Allocated');
  assert.equal(api.puts, 2);
  assert.ok(performance.now() - t0 >= 280, 'waited for the answer first');
});

test('a write applied whose answer was lost is a success (nothing allocated without a caller)', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store, l } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  api.put = { kind: 'apply-then-drop' };
  const written = await store.update(allocate(x), never());
  assert.equal(written.state, 'Allocated');
  assert.equal(written.labels['match'], 'm1');
  assert.equal(written.resourceVersion, api.objects.get('x')!.metadata.resourceVersion);
  assert.equal(store.get(NS, 'x')?.resourceVersion, written.resourceVersion, 'cached at once');
  assert.equal(l.calls.at(-1), `upsert x ${written.resourceVersion} Allocated`);
});

test('another writer got there while the answer was lost: StoreConflict, and the stale copy is withheld', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store, l } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  api.put = { kind: 'other-writer-then-drop' };
  await assert.rejects(store.update(allocate(x), never()), StoreConflict);
  assert.equal(l.calls.at(-1), 'remove x');
});

test('deleted meanwhile: StoreNotFound', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  api.put = { kind: 'drop' };
  api.objects.delete('x');
  await assert.rejects(store.update(allocate(x), never()), StoreNotFound);
});

test('the API server stays away past the write timeout: NOT_READY, ambiguous, bounded by writeTimeoutMs and not by the caller', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api, 400);
  const x = store.get(NS, 'x') as GameServer;
  api.put = { kind: 'hang' };
  api.getStatus = 503;
  const t0 = performance.now();
  // the caller's signal ends at once: a sent write is still settled
  const err = await store.update(allocate(x), AbortSignal.timeout(50)).catch((e: unknown) => e);
  const elapsed = performance.now() - t0;
  assert.ok(err instanceof AllocationError, String(err));
  assert.deepEqual([err.reason, err.metadata['ambiguous']], ['NOT_READY', 'true']);
  assert.match(err.message, /no answer within 400 ms\); it may still be applied/);
  assert.ok(api.gets >= 2, `kept asking (${api.gets} reads)`);
  // the lower bound is causal; the upper one leaves a loaded machine's slack
  assert.ok(elapsed >= 750 && elapsed < 10_000, `the answer's 400 ms, then 400 ms of settling (${elapsed.toFixed(0)} ms)`);
});

test('a refused connection is NOT_READY and not ambiguous (the write never left)', async (t) => {
  const api = await fakeApi(t, [object('x', '5')]);
  const { store } = await started(t, api);
  const x = store.get(NS, 'x') as GameServer;
  await api.close();
  await new Promise((r) => setTimeout(r, 50)); // the client notices its kept-alive socket is gone
  const err = await store.update(allocate(x), never()).catch((e: unknown) => e);
  assert.ok(err instanceof AllocationError, String(err));
  assert.deepEqual([err.reason, err.metadata['ambiguous']], ['NOT_READY', 'false']);
});

async function waitFor(f: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
