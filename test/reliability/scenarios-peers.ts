// Reliability scenarios for unauthenticated and slow peers (issue 12 item 6), next to the flood
// and slow-client ones: the gateway is a child process, real callers are the caller process
// (caller.ts: 127.0.0.1, identity test-client, every GameServer told recorded by name) plus fresh
// connections, the attackers come from other loopback addresses or identities. Each returns its
// table row; assertions throw.
import assert from 'node:assert/strict';
import type { TestCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';
import { grpcAllocate, grpcPrefix, grpcStream, h2Session, restAllocate, silentSockets, trickle, type GrpcReply, type RestResult } from '../helpers/raw-peers.ts';
import { allocateMethod } from '../../src/protocol/proto.ts';
import type { CallRecord } from './caller.ts';
import { fdCount, p99Of, rssMiB, runCaller, sampleRss, sleep, unexpected, type ScenarioResult } from './load.ts';
import { memoryLedger, type Owner } from './scenarios-memory.ts';

/** The gateway's memory outside the JS heap (Buffers), from its metrics. */
async function externalMiB(opsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  return Number(/^gateway_nodejs_external_memory_bytes (\S+)/m.exec(text)?.[1]) / 1024 / 1024;
}

const ALLOCATE = { namespace: 'default' };

/** A call told a name outside the caller process (a fresh connection's REST or raw gRPC Allocate). */
const toldOutside = (key: string, name: string): CallRecord & { identity: null } =>
  ({ key, name, outcome: 'told', tries: 1, firstTarget: 0, startedAt: 0, endedAt: 0, firstUnknown: false, identity: null });

/**
 * ~120 new TCP connections a second per door from one address, none finishing TLS, while real
 * callers keep calling and keep opening new connections: the flood holds only its address's
 * handshake slots, never the door.
 */
export async function handshakeFlood(owner: Owner, certs: TestCerts, o: { durationMs: number }): Promise<ScenarioResult> {
  // A door of 256: at 120 a second and a 10 s handshake timeout, the flood would fill it in ~2 s without per-peer caps.
  const gw = await startGatewayProcess(owner, { certs, name: 'hs-flood', fleet: simpleFleet('h', 50_000), config: { log: { level: 'info' }, admission: { maxConnections: 256 } } });
  const before = await gw.store.snapshot();
  const fd0 = fdCount(gw.pid);
  const rss0 = rssMiB(gw.pid);
  const floods: ReturnType<typeof silentSockets>[] = [];
  const freshTold: ReturnType<typeof toldOutside>[] = [];
  const flooding = setInterval(() => {
    for (const port of [gw.grpcPort, gw.restPort]) floods.push(silentSockets(port, 12, '127.0.0.2'));
  }, 100);
  let fresh = 0;
  let freshFailed = 0;
  const freshFailures: string[] = [];
  let stop = false;
  // Real callers that connect anew throughout: one REST call and one gRPC session at a time. At
  // least 5 of them, while the flood goes on, however slow a loaded machine makes each one.
  const freshCallers = (async () => {
    await sleep(2_500); // past the point where an uncapped door would be full
    while (!stop || fresh < 5) {
      fresh++;
      try {
        const r = await restAllocate(gw.restPort, certs);
        const s = await h2Session(gw.grpcPort, certs);
        const g = await grpcAllocate(s);
        s.destroy();
        if (r.status !== 200 || g.status !== 0) throw new Error(`REST ${r.status}, gRPC ${g.status}`);
        freshTold.push(toldOutside(`fresh-rest-${fresh}`, (JSON.parse(r.body) as { gameServerName: string }).gameServerName));
        freshTold.push(toldOutside(`fresh-grpc-${fresh}`, (allocateMethod.responseDeserialize(g.data.subarray(5)) as { gameServerName: string }).gameServerName));
      } catch (err) {
        freshFailed++;
        if (freshFailures.length < 3) freshFailures.push((err as Error).message);
      }
      await sleep(100);
    }
  })();
  const total = Math.round(o.durationMs * 0.3); // 300 a second
  const out = await runCaller({ addresses: [gw.address], total, rps: 300, concurrency: 8, connections: 2, deadlineMs: 5_000, request: ALLOCATE, labelEach: 'req', keyPrefix: 'hsflood', retryForMs: 0 }, certs);
  stop = true;
  await freshCallers;
  clearInterval(flooding);
  const fdPeak = fdCount(gw.pid);
  const attempted = floods.reduce((n, f) => n + f.sockets.length, 0);
  const refusedAtOnce = (await Promise.all(floods.flatMap((f) => f.closed).map((p) => Promise.race([p, sleep(0).then(() => null)])))).filter((v) => v !== null).length;
  for (const f of floods) f.destroy();
  // The gateway closes its ends asynchronously: wait for the count to come back, or time out.
  let fdAfter = fdCount(gw.pid);
  for (const end = Date.now() + 15_000; fdAfter > fd0 + 20 && Date.now() < end; fdAfter = fdCount(gw.pid)) await sleep(100);
  assert.deepEqual(unexpected(out.results, ['OK']), [], 'real callers were hurt by the handshake flood');
  assert.ok(fresh >= 5, `only ${fresh} fresh connections tried`);
  assert.equal(freshFailed, 0, `${freshFailed} of ${fresh} fresh connections failed: ${freshFailures.join(' | ')}`);
  // Per door at most 32 silent connections from that address at once (plus sockets closing).
  assert.ok(fdPeak - fd0 < 2 * 32 + 60, `file descriptors ${fd0} → ${fdPeak} under the flood`);
  assert.ok(fdAfter <= fd0 + 20, `file descriptors leaked: ${fd0} before, ${fdAfter} after`);
  const l = memoryLedger(before, await gw.store.snapshot(), [...out.results, ...freshTold], certs);
  assert.deepEqual(l.problems, []);
  return {
    scenario: 'TLS handshake flood, ~120 conn/s per door from one address', requests: out.results.length + fresh * 2, rps: out.results.length / ((out.endedAt - out.startedAt) / 1000), faults: attempted, badInputs: 0,
    doubles: l.doubles, lost: l.lost, p99Ms: p99Of(out.results), rssGrowthMiB: rssMiB(gw.pid) - rss0,
    note: `${attempted} silent connections, ${refusedAtOnce} closed by the gateway before the flood stopped; ${fresh} fresh REST+gRPC connections all served; fds ${fd0}→${fdPeak}→${fdAfter}`,
  };
}

/**
 * Many REST calls from one identity whose bodies trickle a byte a second: that identity holds at
 * most its share of admission slots, each only until the body timeout; ghz (another identity) is
 * never OVERLOADED.
 */
export async function slowBodies(owner: Owner, certs: TestCerts, o: { sockets: number; maxInFlight: number }): Promise<ScenarioResult> {
  const gw = await startGatewayProcess(owner, {
    certs, name: 'slow-bodies', fleet: simpleFleet('b', 50_000),
    config: { log: { level: 'info' }, admission: { maxInFlight: o.maxInFlight, bodyTimeoutMs: 8_000, maxConnections: o.sockets + 64 } },
  });
  const before = await gw.store.snapshot();
  const rss0 = rssMiB(gw.pid);
  const noisy = certs.leaf('noisy-bodies', { san: 'URI:spiffe://allocator-gateway/noisy' });
  const calls: Promise<RestResult | Error>[] = [];
  // Paced and spread over addresses: handshakes are capped per address; what is measured is the slots.
  for (let i = 0; i < o.sockets; i++) {
    calls.push(restAllocate(gw.restPort, certs, { pair: noisy, localAddress: `127.0.2.${(i % 16) + 1}`, write: trickle(1_000) }).catch((e: Error) => e));
    if (i % 16 === 15) await sleep(20);
  }
  const sampler = sampleRss(gw.pid, 100);
  const out = await runCaller({ addresses: [gw.address], total: 1_500, rps: 300, concurrency: 8, deadlineMs: 5_000, request: ALLOCATE, labelEach: 'req', keyPrefix: 'slowbody', retryForMs: 0 }, certs);
  const results = await Promise.all(calls);
  const peakMiB = sampler.stop().peakMiB;
  const byStatus: Record<string, number> = {};
  for (const c of results) {
    const k = c instanceof Error ? 'error' : String(c.status);
    byStatus[k] = (byStatus[k] ?? 0) + 1;
  }
  const share = Math.floor(o.maxInFlight / 4);
  assert.deepEqual(unexpected(out.results, ['OK']), [], 'the other identity was refused while one identity trickled bodies');
  // Within the share: 408 at the body timeout; past it: 503 at once (or, for a client still writing when the
  // gateway closes, a reset before it reads the 503). None allocated (the ledger below).
  assert.ok((byStatus['408'] ?? 0) <= share, `statuses of the slow calls: ${JSON.stringify(byStatus)}`);
  assert.equal((byStatus['503'] ?? 0) + (byStatus['408'] ?? 0) + (byStatus.error ?? 0), o.sockets, `statuses of the slow calls: ${JSON.stringify(byStatus)}`);
  assert.ok((byStatus['503'] ?? 0) >= (o.sockets - share) * 0.8, `statuses of the slow calls: ${JSON.stringify(byStatus)}`);
  // None of the trickled calls allocated: every Allocated GameServer was told to the caller process.
  const l = memoryLedger(before, await gw.store.snapshot(), out.results, certs);
  assert.deepEqual(l.problems, []);
  return {
    scenario: `${o.sockets} REST bodies trickled by one identity (maxInFlight ${o.maxInFlight})`, requests: out.results.length + o.sockets, rps: out.results.length / ((out.endedAt - out.startedAt) / 1000), faults: o.sockets, badInputs: 0,
    doubles: l.doubles, lost: l.lost, p99Ms: p99Of(out.results), rssGrowthMiB: peakMiB - rss0, note: `slow calls answered ${JSON.stringify(byStatus)}; other identity all OK`,
  };
}

/**
 * One identity opens connections full of gRPC streams whose messages never finish: what the
 * gateway holds stays within that identity's share of admission.maxPendingRequestMiB, the rest
 * is refused UNAVAILABLE, and ghz (another identity) is served.
 */
export async function partialMessages(owner: Owner, certs: TestCerts, o: { connections: number; streams: number }): Promise<ScenarioResult> {
  const gw = await startGatewayProcess(owner, { certs, name: 'partials', fleet: simpleFleet('p', 50_000), config: { log: { level: 'info' } } });
  const before = await gw.store.snapshot();
  const rss0 = rssMiB(gw.pid);
  const external0 = await externalMiB(gw.opsPort);
  const noisy = certs.leaf('noisy-partials', { san: 'URI:spiffe://allocator-gateway/noisy' });
  const sessions = await Promise.all(Array.from({ length: o.connections }, () => h2Session(gw.grpcPort, certs, { pair: noisy })));
  const sampler = sampleRss(gw.pid, 100);
  const replies: Promise<GrpcReply>[] = [];
  for (const s of sessions) {
    for (let i = 0; i < o.streams; i++) {
      const { stream, reply } = grpcStream(s, '/allocation.AllocationService/Allocate');
      stream.write(Buffer.concat([grpcPrefix(4 * 1024 * 1024 - 64), Buffer.alloc(1024 * 1024, 0x42)]));
      replies.push(reply);
    }
  }
  const out = await runCaller({ addresses: [gw.address], total: 1_500, rps: 300, concurrency: 8, deadlineMs: 5_000, request: ALLOCATE, labelEach: 'req', keyPrefix: 'partial', retryForMs: 0 }, certs);
  const answered = (await Promise.all(replies.map((p) => Promise.race([p, sleep(0).then(() => null)])))).filter((v) => v !== null);
  const peakMiB = sampler.stop().peakMiB;
  // Measured while the held streams are still open: what the gateway keeps, not what passed through it.
  const heldMiB = rssMiB(gw.pid) - rss0;
  const heldExternalMiB = (await externalMiB(gw.opsPort)) - external0;
  for (const s of sessions) s.destroy();
  const attemptedMiB = o.connections * o.streams;
  const overloaded = answered.filter((a) => a.status === 14).length;
  assert.deepEqual(unexpected(out.results, ['OK']), [], 'the other identity was hurt by partial messages');
  // The identity's share of 128 MiB is 32 MiB: of 1 MiB streams, at most ~32 stay open.
  assert.ok(replies.length - overloaded <= 40, `${replies.length - overloaded} of ${replies.length} partial streams were still held`);
  // Buffers live outside the JS heap; V8 collects them only after many more are allocated, so well over
  // the 32 MiB share may be garbage not yet collected (98 MiB seen in a loaded run). Unbounded, every byte
  // offered stays held: the bound is what tells the two apart.
  assert.ok(heldExternalMiB < (attemptedMiB * 2) / 3, `external memory ${heldExternalMiB.toFixed(0)} MiB above the start while ${attemptedMiB} MiB of partial messages were offered`);
  const l = memoryLedger(before, await gw.store.snapshot(), out.results, certs);
  assert.deepEqual(l.problems, []);
  return {
    scenario: `partial gRPC messages: ${o.connections} connections × ${o.streams} streams × 1 MiB from one identity`, requests: out.results.length, rps: out.results.length / ((out.endedAt - out.startedAt) / 1000), faults: replies.length, badInputs: 0,
    doubles: l.doubles, lost: l.lost, p99Ms: p99Of(out.results), rssGrowthMiB: peakMiB - rss0, note: `${overloaded} partial streams refused OVERLOADED; ${attemptedMiB} MiB offered; external memory +${heldExternalMiB.toFixed(0)} MiB, RSS +${heldMiB.toFixed(0)} MiB while held (peak +${(peakMiB - rss0).toFixed(0)})`,
  };
}
