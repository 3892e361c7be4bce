// The API server restarts (SIGTERM, then a SIGKILL crash) while two gateway processes are under
// steady load: they recover on their own, and no allocation is lost or duplicated: what the
// callers were told matches the Allocated objects one for one (each request labels what it
// allocates). A crash loses answers to writes etcd already committed; the store reads those back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type ControlPlane, type Json } from '../cluster/control-plane.ts';
import { devCerts } from '../helpers/certs.ts';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { createGameServers, outcome, skipReason, tally, until, type Outcome } from './fixtures.ts';

let cp: ControlPlane;
let replicas: GatewayProcess[] = [];
const NS = 'restart';
const POOL = 600;
const certs = devCerts({ after });
const cleanups: (() => Promise<void> | void)[] = [];
const owner = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };

before(async () => {
  if (skipReason) return;
  cp = await startControlPlane();
  await cp.createNamespace(NS);
  for (const how of ['graceful', 'crash']) {
    await createGameServers(cp, NS, POOL, (i) => ({ name: `${how}-${String(i).padStart(3, '0')}`, labels: { 'agones.dev/fleet': `restart-${how}` }, nodeName: `node-${i % 10}` }), 32);
  }
  const config = { cluster: { kind: 'kubernetes', kubeconfig: cp.kubeconfigPath, namespaces: [NS] }, log: { level: 'info' } };
  replicas = await Promise.all(['a', 'b'].map((name) => startGatewayProcess(owner, { certs, name, config })));
});
after(async () => {
  await Promise.all(cleanups.map((f) => f()));
  await cp?.stop();
});

interface Call {
  readonly req: string;
  readonly replica: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: Outcome;
}

/** SIGTERM (drains in-flight requests) or SIGKILL (a crash: replies to applied writes may be lost). */
async function restart(how: 'graceful' | 'crash'): Promise<void> {
  if (how === 'crash') process.kill(cp.apiServerPid, 'SIGKILL');
  await cp.restartApiServer();
}

describe('API server restart under load', { skip: skipReason }, () => {
  for (const how of ['graceful', 'crash'] as const) test(`${how} restart: the gateways recover; no allocation is lost or duplicated`, async () => {
    const fleet = `restart-${how}`;
    const clients = replicas.map((r) => ({ name: r.name, client: r.client() }));
    const calls: Call[] = [];
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    let stop = false;
    let seq = 0;
    // 4 callers per replica, ~10 calls/s each: about 80 allocations/s, well inside the pool
    const worker = async (w: number) => {
      const { name, client } = clients[w % clients.length]!;
      while (!stop) {
        const req = `r-${seq++}`;
        const startMs = now();
        const o = await outcome(client.allocate({ namespace: NS, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': fleet } }], metadata: { labels: { req } } }, { deadline: 3_000 }));
        calls.push({ req, replica: name, startMs, endMs: now(), outcome: o });
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    let restartAt = Infinity;
    let backAt = Infinity;
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      restartAt = now();
      await restart(how);
      backAt = now();
      // keep the load on until both replicas have served again, and a little longer
      await until('both replicas allocate again', () => clients.every((c) => calls.some((x) => x.replica === c.name && x.startMs > backAt && 'ok' in x.outcome)), 30_000);
      await new Promise((r) => setTimeout(r, 1_000));
    } catch (err) {
      const recent = calls.slice(-10).map((x) => `${x.replica} +${(x.startMs - backAt).toFixed(0)} ms ${JSON.stringify(x.outcome)}`);
      throw new Error(`${(err as Error).message}; ${calls.length} calls: ${JSON.stringify(tally(calls.map((x) => x.outcome)))}; last: ${recent.join(' | ')}`, { cause: err });
    } finally {
      stop = true;
      await load;
    }

    const phase = (x: Call) => (x.endMs < restartAt ? 'before' : x.startMs > backAt ? 'after' : 'during');
    const summary = ['before', 'during', 'after'].map((p) => `${p}: ${JSON.stringify(tally(calls.filter((x) => phase(x) === p).map((x) => x.outcome)))}`);
    const failures = calls.filter((x) => !('ok' in x.outcome)).map((x) => x.outcome as Exclude<Outcome, { ok: string }>);
    const samples = [...new Map(failures.map((f) => [`${f.code}/${f.reason}`, f.message])).entries()].map(([k, m]) => `${k}: ${m}`);
    const count = (re: RegExp) => replicas.reduce((n, r) => n + r.logs.filter((l) => re.test(String(l.msg))).length, 0);
    const settled = count(/answer was lost was applied/);
    const unsettled = count(/could not learn whether/);
    console.log(`${how}: restart took ${(backAt - restartAt).toFixed(0)} ms; ${calls.length} calls; ${summary.join('; ')}; writes whose answer was lost but were applied (read back, reported as successes): ${settled}, left ambiguous: ${unsettled}\n  failures seen: ${samples.join('\n  ')}`);

    // recovered: everything after the restart succeeds; outage errors are transient codes only
    assert.ok(calls.some((x) => phase(x) === 'before' && 'ok' in x.outcome), 'allocations before the restart');
    // The fault hit: calls (each a write) were in flight while the API server was away.
    assert.ok(calls.some((x) => phase(x) === 'during'), 'no call was in flight during the restart: the fault missed');
    const after = calls.filter((x) => phase(x) === 'after');
    const lateFailures = after.filter((x) => !('ok' in x.outcome) && x.startMs > backAt + 5_000);
    assert.deepEqual(lateFailures, [], 'no failures 5 s after the API server is back');
    // retryable codes only: UNAVAILABLE (API server away), DEADLINE_EXCEEDED, and rarely ABORTED/CONTENTION
    // (the other replica's writes kept winning while this one's watch was down)
    const transient = (f: (typeof failures)[number]) => f.code === 'UNAVAILABLE' || f.code === 'DEADLINE_EXCEEDED' || (f.code === 'ABORTED' && f.reason === 'CONTENTION');
    // an INTERNAL is a gateway bug: its log line (with the error) says where it came from
    const errors = () => replicas.flatMap((r) => r.logs.filter((l) => Number(l.level) >= 50).map((l) => `${r.name}: ${JSON.stringify(l).slice(0, 2_000)}`)).join('\n');
    for (const f of failures) assert.ok(transient(f), `outage answered ${f.code}/${f.reason}: ${f.message}\n${errors()}`);
    assert.ok(!failures.some((f) => f.code === 'RESOURCE_EXHAUSTED'), 'the pool never ran out');

    // audit: told ⇔ Allocated, one for one
    const told = new Map<string, string>();
    for (const x of calls) {
      if (!('ok' in x.outcome)) continue;
      assert.ok(!told.has(x.outcome.ok), `${x.outcome.ok} handed out twice (${told.get(x.outcome.ok)} and ${x.req})`);
      told.set(x.outcome.ok, x.req);
    }
    const items = ((await cp.listGameServers(NS)).items as Json[]).filter((g) => g.metadata.labels['agones.dev/fleet'] === fleet);
    const allocated = new Map(items.filter((g) => g.status.state === 'Allocated').map((g) => [g.metadata.name as string, g.metadata.labels.req as string]));
    // An Allocated GameServer its writer was not told is forgiven only when that call's own outcome
    // was unknown (no answer, or one marked ambiguous): the caller was told it may have allocated.
    const byReq = new Map(calls.map((x) => [x.req, x.outcome]));
    const untold = [...allocated].filter(([name, req]) => told.get(name) !== req);
    const lost = untold.filter(([, req]) => { const o = byReq.get(req); return !(o && !('ok' in o) && o.unknown); });
    assert.deepEqual(lost, [], 'every Allocated GameServer was reported to the caller whose request wrote it, or that call\'s outcome was unknown (none lost)');
    for (const [name] of told) assert.equal(allocated.get(name) !== undefined, true, `${name} was told but is not Allocated on the API server`);
    assert.equal(allocated.size, told.size + untold.length, 'every success is Allocated on the API server');
    if (untold.length > 0) console.log(`${untold.length} allocations whose callers got an unknown outcome: ${untold.map(([n, r]) => `${n} (${r})`).join(', ')}`);

    // and both replicas are ready and serving
    for (const r of replicas) assert.equal((await fetch(`http://127.0.0.1:${r.opsPort}/ready`)).status, 200, `${r.name} ready`);
  });
});
