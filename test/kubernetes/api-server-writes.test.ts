// GameServer and idempotency Lease writes on a real kube-apiserver, with gateways as child
// processes. A GameServer write that stalls past allocation.writeTimeoutMs: a validating webhook
// holds the keyed write until etcd is paused, then lets it through to the stopped etcd, where it
// waits (and may land once etcd resumes). Callers must be told "ambiguous" (UNAVAILABLE,
// NOT_READY, metadata.ambiguous=true), never INTERNAL; the key keeps its claim, so a retry after
// etcd resumes returns what the stalled write allocated and never a second GameServer. A Lease
// claim that stalls the same way; Lease writes taken from the API server write budget. The
// ledger is read from the API server, not from the gateway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { AllocatorError, type AllocatorClient } from '../../src/client/index.ts';
import { startControlPlane, type ControlPlane, type Json } from '../cluster/control-plane.ts';
import { startAdmissionGate, type AdmissionGate } from '../helpers/admission-gate.ts';
import { devCerts } from '../helpers/certs.ts';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { skipReason, until } from './fixtures.ts';

const NS = 'stall';
const KEY_ANNOTATION = 'allocator-gateway.dev/idempotency-key';
const WRITE_TIMEOUT_MS = 1_500;
const certs = devCerts({ after });
const cleanups: (() => Promise<void> | void)[] = [];
const owner = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
let cp: ControlPlane;
let gw: GatewayProcess;
let client: AllocatorClient;
let gate: AdmissionGate;

/** Code, reason and ErrorInfo metadata of a failed call; the name of a successful one. */
async function call(p: Promise<{ gameServerName: string }>): Promise<{ ok: string } | { code: string; reason: string | null; metadata: Record<string, string>; message: string }> {
  try {
    return { ok: (await p).gameServerName };
  } catch (err) {
    if (!(err instanceof AllocatorError)) throw err;
    return { code: err.codeName, reason: err.reason, metadata: { ...(err.errorInfo?.metadata ?? {}) }, message: err.details };
  }
}

before(async () => {
  if (skipReason) return;
  cp = await startControlPlane();
  await cp.createNamespace(NS);
  for (let i = 0; i < 8; i++) await cp.createGameServer(NS, { name: `gs-${i}` });
  await cp.createGameServer(NS, { name: 'probe', state: 'Reserved' }); // never allocatable: only pokes the webhook
  gw = await startGatewayProcess(owner, {
    certs,
    name: 'stall',
    config: { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [NS] }, allocation: { writeTimeoutMs: WRITE_TIMEOUT_MS } },
  });
  client = gw.client();
  // Holds GameServer and Lease updates in NS when a test asks it to.
  gate = await startAdmissionGate(cp, certs, owner, {
    name: 'stall-gate',
    namespace: NS,
    rules: [
      { apiGroups: ['agones.dev'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['gameservers'], scope: 'Namespaced' },
      { apiGroups: ['coordination.k8s.io'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['leases'], scope: 'Namespaced' },
    ],
    probe: async (n) => {
      await cp.patchGameServer(NS, 'probe', { metadata: { annotations: { probe: String(n) } } });
      return 'probe';
    },
  });
});
after(async () => {
  cp?.resumeEtcd();
  for (const c of cleanups.reverse()) await c();
  await cp?.stop();
});

/** Resolves once every thread of `pid` is stopped (SIGSTOP takes effect per thread). */
async function stopped(pid: number): Promise<void> {
  await until('etcd stopped', () => readdirSync(`/proc/${pid}/task`).every((t) => {
    try {
      return /^\d+ \(.*\) [Tt] /.test(readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'));
    } catch {
      return true; // the thread is gone
    }
  }), 2_000, 1);
}

/** Allocated GameServers of NS, and those carrying an idempotency key, from the API server. */
async function ledger(): Promise<{ allocated: Json[]; keyed: Map<string, Json> }> {
  const items = (await cp.listGameServers(NS)).items as Json[];
  const allocated = items.filter((g) => g.status?.state === 'Allocated');
  return { allocated, keyed: new Map(allocated.filter((g) => g.metadata.annotations?.[KEY_ANNOTATION] !== undefined).map((g) => [g.metadata.annotations[KEY_ANNOTATION] as string, g])) };
}

/**
 * A keyed Allocate whose write reaches the API server (held by the webhook: the key's claim is
 * won), then etcd stops and the write goes on to it; an unkeyed Allocate is sent while etcd is
 * stopped. etcd resumes `resumeAfterMs` after the keyed call was sent.
 */
async function stalledPair(key: string, resumeAfterMs: number) {
  gate.hold = (name) => name.startsWith('gs-');
  const from = gate.seen.length;
  const t0 = performance.now();
  const keyed = call(client.allocate({ namespace: NS }, { idempotencyKey: key, deadline: 10_000 }));
  const target = await until('the keyed write reaches the webhook', () => gate.seen.slice(from).find((n) => n.startsWith('gs-')), 5_000, 5);
  cp.pauseEtcd();
  await stopped(cp.etcd.pid);
  let resumedAt = Infinity;
  const resume = (async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, resumeAfterMs - (performance.now() - t0))));
    cp.resumeEtcd();
    resumedAt = Date.now();
  })();
  try {
    gate.open();
    const unkeyed = call(client.allocate({ namespace: NS }, { deadline: 10_000 }));
    const [k, u] = await Promise.all([keyed, unkeyed]);
    const answeredMs = performance.now() - t0;
    return { target, k, u, answeredMs, resumed: async () => (await resume, resumedAt) };
  } catch (err) {
    cp.resumeEtcd();
    throw err;
  }
}

describe('a GameServer write stalled past the write timeout (real API server, etcd paused)', { skip: skipReason }, () => {
  test('etcd back before the write is settled: keyed and unkeyed callers get their GameServer (read back, or fenced by the same write)', async () => {
    const before = (await ledger()).allocated.length;
    // past the write's answer (writeTimeoutMs), inside the settling that follows it (another writeTimeoutMs)
    const { target, k, u, answeredMs, resumed } = await stalledPair('match-settled', 1.4 * WRITE_TIMEOUT_MS);
    await resumed();
    console.log(`target ${target}; keyed: ${JSON.stringify(k)}; unkeyed: ${JSON.stringify(u)}; answered after ${answeredMs.toFixed(0)} ms`);
    assert.deepEqual(k, { ok: target }, 'the keyed caller is told the GameServer its stalled write allocated');
    assert.ok('ok' in u, `unkeyed: ${JSON.stringify(u)}`);
    const l = await ledger();
    assert.equal(l.allocated.length - before, 2, 'exactly the two GameServers the callers were told');
    assert.deepEqual(l.allocated.map((g) => g.metadata.name).filter((n: string) => n === k.ok || n === u.ok).sort(), [k.ok, u.ok].sort());
  });

  test('etcd stays stopped past the settling: keyed and unkeyed callers are told "ambiguous", never INTERNAL; the key is served once after etcd resumes', async () => {
    const before = await ledger();
    const { target, k, u, answeredMs, resumed } = await stalledPair('match-stalled', 2 * WRITE_TIMEOUT_MS + 1_500);
    const resumedAt = await resumed();
    console.log(`target ${target}; keyed: ${JSON.stringify(k)}; unkeyed: ${JSON.stringify(u)}; answered after ${answeredMs.toFixed(0)} ms`);
    for (const [who, r] of [['keyed', k], ['unkeyed', u]] as const) {
      assert.ok('code' in r, `${who}: an allocation cannot be confirmed while etcd is stopped`);
      assert.deepEqual([r.code, r.reason, r.metadata['ambiguous']], ['UNAVAILABLE', 'NOT_READY', 'true'], `${who}: ${r.message}`);
      assert.match(r.message, /may still be applied/, who);
    }
    // bounded by the gateway (the answer, then the settling, each within writeTimeoutMs), not by the caller's 10 s deadline
    assert.ok(answeredMs < 2 * WRITE_TIMEOUT_MS + 1_500, `answered after ${answeredMs.toFixed(0)} ms`);

    // Retry the key until it is served: while its claim is held (the stalled write may land),
    // IDEMPOTENCY_CONFLICT; never a second GameServer.
    const retries: string[] = [];
    const served = await until('the keyed retry is served', async () => {
      const r = await call(client.allocate({ namespace: NS }, { idempotencyKey: 'match-stalled', deadline: 3_000 }));
      if ('ok' in r) return r.ok;
      retries.push(`${r.code}/${r.reason}`);
      assert.ok(['ALREADY_EXISTS', 'UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(r.code), `retry: ${r.code} ${r.reason}: ${r.message}`);
      return undefined;
    }, 40_000, 200);
    const again = await call(client.allocate({ namespace: NS }, { idempotencyKey: 'match-stalled', deadline: 3_000 }));
    assert.deepEqual(again, { ok: served }, 'a repeat returns the same GameServer');

    // The ledger, read from the API server.
    const l = await ledger();
    const fresh = l.allocated.filter((g) => !before.allocated.some((b) => b.metadata.name === g.metadata.name));
    const mine = [...l.keyed.entries()].filter(([hash]) => !before.keyed.has(hash)).map(([, g]) => g.metadata.name as string);
    const stalled = l.allocated.find((g) => g.metadata.name === target);
    // the stalled write's own stamp is older than etcd's resumption; the retry's is newer
    const stalledLanded = stalled !== undefined && Date.parse(stalled.metadata.annotations?.['agones.dev/last-allocated'] ?? '') < resumedAt;
    console.log(`retries before served: ${retries.join(', ') || 'none'}; served ${served}; stalled write landed: ${stalledLanded}; newly Allocated: ${fresh.map((g) => g.metadata.name).join(', ')}`);
    assert.deepEqual(mine, [served], 'exactly one GameServer allocated for the key: the one its retry was told');
    if (stalledLanded) assert.equal(served, target, 'the retry returns what the stalled write allocated');
    // Told: the keyed retry. Reported ambiguous: the unkeyed call (its write may have landed).
    assert.ok(fresh.length >= 1 && fresh.length <= 2, `newly Allocated: ${fresh.map((g) => g.metadata.name).join(', ')}`);
    assert.deepEqual(gw.logs.filter((x) => x.outcome === 'INTERNAL'), [], 'no INTERNAL in the audit log');
  });

  test('recording the result in the key\'s Lease stalls: the caller still gets its GameServer at once; a repeat returns it', async () => {
    const before = await ledger();
    gate.hold = (name) => name.startsWith('gw-idem-');
    const from = gate.seen.length;
    const t0 = performance.now();
    // a deadline shorter than writeTimeoutMs: the answer must not wait for the Lease write
    const r = await call(client.allocate({ namespace: NS }, { idempotencyKey: 'record-stalled', deadline: WRITE_TIMEOUT_MS - 300 }));
    const answeredMs = performance.now() - t0;
    await until('the result write reaches the webhook', () => gate.seen.slice(from).some((n) => n.startsWith('gw-idem-')), 5_000, 20);
    gate.open();
    console.log(`result write held: ${JSON.stringify(r)} after ${answeredMs.toFixed(0)} ms`);
    assert.ok('ok' in r, `the allocation was made: ${JSON.stringify(r)}`);
    const again = await call(client.allocate({ namespace: NS }, { idempotencyKey: 'record-stalled', deadline: 5_000 }));
    assert.deepEqual(again, r, 'a repeat returns the same GameServer');
    const l = await ledger();
    const mine = [...l.keyed.entries()].filter(([hash]) => !before.keyed.has(hash)).map(([, g]) => g.metadata.name as string);
    assert.deepEqual(mine, [r.ok]);
  });

  test('the idempotency Lease claim stalls: NOT_READY within the write timeout; after etcd resumes the key is served once, at once', async (t) => {
    const before = await ledger();
    cp.pauseEtcd();
    let paused = true;
    t.after(() => {
      if (paused) cp.resumeEtcd();
    });
    const t0 = performance.now();
    const r = await call(client.allocate({ namespace: NS }, { idempotencyKey: 'lease-stalled', deadline: 6_000 }));
    const answeredMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300));
    cp.resumeEtcd();
    paused = false;
    console.log(`claim while etcd paused: ${JSON.stringify(r)} after ${answeredMs.toFixed(0)} ms`);
    assert.ok('code' in r);
    assert.deepEqual([r.code, r.reason], ['UNAVAILABLE', 'NOT_READY'], r.message);
    assert.ok(answeredMs < 6_000 - 1_000, `bounded by the write timeout, not the caller's deadline (${answeredMs.toFixed(0)} ms)`);
    // The Lease may have been created when etcd resumed: it is this replica's own, held by no
    // request, so the retry takes it back instead of waiting for it to lapse.
    const retry = await call(client.allocate({ namespace: NS }, { idempotencyKey: 'lease-stalled', deadline: 5_000 }));
    assert.ok('ok' in retry, JSON.stringify(retry));
    const l = await ledger();
    const mine = [...l.keyed.entries()].filter(([hash]) => !before.keyed.has(hash)).map(([, g]) => g.metadata.name as string);
    assert.deepEqual(mine, [retry.ok], 'one GameServer for the key');
  });
});

describe('idempotency Lease writes count against the API server write budget (cluster.qps/burst)', { skip: skipReason }, () => {
  test('keyed allocations at qps 2, burst 1: three writes each (Lease create, GameServer, Lease result), all rate-limited', async () => {
    const ns = 'budget';
    await cp.createNamespace(ns);
    for (let i = 0; i < 4; i++) await cp.createGameServer(ns, { name: `b-${i}` });
    const limited = await startGatewayProcess(owner, {
      certs,
      name: 'budget',
      config: { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [ns], qps: 2, burst: 1 } },
    });
    const c = limited.client();
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) {
      const r = await call(c.allocate({ namespace: ns }, { idempotencyKey: `budget-${i}`, deadline: 20_000 }));
      assert.ok('ok' in r, JSON.stringify(r));
    }
    // the results are recorded after the answers: done when every Lease carries one
    await until('every result recorded', async () => {
      const leases = await cp.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`);
      const items = leases.body.items as Json[];
      return items.length === 4 && items.every((x) => x.metadata.annotations?.['allocator-gateway.dev/result'] !== undefined);
    }, 20_000, 50);
    const elapsedMs = performance.now() - t0;
    console.log(`4 keyed allocations (12 writes) at qps 2, burst 1: ${elapsedMs.toFixed(0)} ms`);
    // 12 writes, the first from the burst, then one every 500 ms: at least 5.5 s (GameServer writes alone: 1.5 s)
    assert.ok(elapsedMs >= 5_000, `Lease writes were not rate-limited: ${elapsedMs.toFixed(0)} ms`);
  });
});
