// Random valid and invalid Allocate requests over real gRPC (raw bytes) and REST (raw bodies)
// against a running gateway: the gateway agrees with the decode oracle, never answers INTERNAL
// or UNKNOWN, stays up, allocates only for valid requests, and the ledger balances.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { RequestType } from '../../src/protocol/proto.ts';
import { jsonToBinary } from '../../src/protocol/proto-json.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import { devCerts } from '../helpers/certs.ts';
import { gameServer, OBJECT_PROPERTY_NAMES, readyPool } from '../helpers/game-servers.ts';
import { restCall, startGateway } from '../helpers/gateway.ts';
import { auditedNames, auditLedger, snapshotMemory } from '../reliability/ledger.ts';
import { actionRequest, anyJson, corruptedRequest, forgedAnnotationRequest, validRequest } from './arbitraries.ts';
import { decodeBytes, decodeText, FIELD_PATH, judge } from './oracle.ts';
import { report } from '../reliability/report.ts';

const RUNS = Number(process.env.FUZZ_DOOR_RUNS ?? 250);
const OK_CODES = new Set(['OK', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION']);

test(`${RUNS} random requests per door over real gRPC and REST`, async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs, gameServers: [...readyPool(Math.max(400, RUNS + 100), { nodes: 8 }), ...propertyKeyed()], config: { log: { level: 'info' }, allocation: { playerAllocationFilter: true } } });
  const before = snapshotMemory(gw.store);
  const ca = readFileSync(certs.caFile);
  const creds = grpc.credentials.createSsl(ca, readFileSync(certs.clientKeyFile), readFileSync(certs.clientCertFile));
  const Raw = grpc.makeGenericClientConstructor({}, 'raw');
  const raw = new Raw(gw.grpcAddress, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.max_send_message_length': 64 << 20 });
  t.after(() => raw.close());
  const callRaw = (bytes: Buffer) =>
    new Promise<{ code: string; details: string; name?: string }>((resolve) => {
      raw.makeUnaryRequest('/allocation.AllocationService/Allocate', (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res?: Buffer) => {
        if (err) return resolve({ code: grpc.status[err.code]!, details: err.details });
        resolve({ code: 'OK', details: '', name: RequestType.root.lookupType('allocation.AllocationResponse').decode(res!).toJSON().gameServerName as string });
      });
    });
  // Plenty of plain valid requests so allocations happen and are audited.
  const plain = fc.constant({ namespace: 'default' });
  const inputs = fc.sample(fc.oneof(validRequest, corruptedRequest, corruptedRequest, anyJson, plain, actionRequest, forgedAnnotationRequest), { numRuns: RUNS, seed: 42 });
  const byteInputs = fc.sample(fc.oneof(
    validRequest.map((r) => Buffer.from(jsonToBinary(r, RequestType))),
    plain.map((r) => Buffer.from(jsonToBinary(r, RequestType))),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.tuple(validRequest, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([r, at, v]) => {
      const b = Buffer.from(jsonToBinary(r, RequestType));
      if (b.length > 0) b[at % b.length] = v;
      return b;
    }),
  ), { numRuns: RUNS, seed: 43 });

  const told: string[] = [];
  const codes: Record<string, number> = {};
  const count = (c: string) => (codes[c] = (codes[c] ?? 0) + 1);
  for (const input of inputs) {
    const text = JSON.stringify(input) ?? '';
    const expect = judge(() => decodeText(text));
    const r = await gw.rest(undefined, { raw: text });
    count(`REST ${r.status}`);
    if (expect === 'invalid') {
      assert.equal(r.status, 400, `REST ${text.slice(0, 300)} → ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      assert.equal(r.body.code, 3);
      assert.match(r.body.message, FIELD_PATH);
    } else {
      assert.ok([200, 429, 400].includes(r.status), `REST valid ${text.slice(0, 300)} → ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      if (r.status === 400) assert.equal(r.body.details[0].reason, 'NO_POLICY');
      if (r.status === 200) {
        told.push(r.body.gameServerName);
        assertStatusMaps(r.body, gw.store.list().find((g) => g.name === r.body.gameServerName)!);
      }
    }
  }
  for (const bytes of byteInputs) {
    const expect = judge(() => decodeBytes(bytes));
    const r = await callRaw(bytes);
    count(`gRPC ${r.code}`);
    if (expect === 'invalid') {
      assert.equal(r.code, 'INVALID_ARGUMENT', `gRPC ${bytes.toString('hex').slice(0, 200)} → ${r.code} ${r.details}`);
      assert.match(r.details, FIELD_PATH);
    } else {
      assert.ok(OK_CODES.has(r.code), `gRPC valid ${bytes.toString('hex').slice(0, 200)} → ${r.code} ${r.details}`);
      if (r.code === 'OK') told.push(r.name!);
    }
  }

  // Oversized: bounded and refused with a clear message; the gateway stays up.
  const big = Buffer.alloc(5 * 1024 * 1024, 0x41);
  const tooBig = await callRaw(Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x40]), big.subarray(0, 1 << 20 << 2)]));
  assert.equal(tooBig.code, 'RESOURCE_EXHAUSTED');
  assert.match(tooBig.details, /larger than max/i);
  const restBig = await restCall(`${gw.restUrl}/gameserverallocation`, {
    ca, cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), method: 'POST', headers: {}, body: `{"namespace":"${'a'.repeat(5 << 20)}"}`,
  });
  // The caller must learn why: a 413 naming the limit, not a reset connection.
  assert.equal(restBig.status, 413, `REST 5 MB → ${restBig.status} ${JSON.stringify(restBig.body).slice(0, 200)}`);
  assert.match((restBig.body as { message: string }).message, /^\(body\): larger than \d+ bytes/);
  assert.equal((await gw.rest({ namespace: 'default' })).status, 200);
  told.push(gw.store.list().find((g) => g.state === 'Allocated' && !told.includes(g.name))!.name);

  assert.ok(!gw.logs.some((l) => l.outcome === 'INTERNAL'), 'an INTERNAL was logged');
  const audit = auditLedger({ before, after: snapshotMemory(gw.store), told, audited: auditedNames(gw.logs) });
  assert.deepEqual(audit.problems, []);
  assert.equal(audit.doubles, 0);
  assert.equal(audit.lost, 0);
  const bad = (codes['REST 400'] ?? 0) + (codes['gRPC INVALID_ARGUMENT'] ?? 0) + 2;
  report({ scenario: 'random requests over real gRPC + REST', requests: inputs.length + byteInputs.length + 3, rps: NaN, faults: 0, badInputs: bad, doubles: audit.doubles, lost: audit.lost, p99Ms: NaN, rssGrowthMiB: NaN, note: `${audit.reported} allocations; ${JSON.stringify(codes)}` });
});

/** GameServers whose counters and lists are named like JavaScript object properties, with room. */
function propertyKeyed() {
  return OBJECT_PROPERTY_NAMES.map((k, i) =>
    gameServer({
      name: `prop-${i}`,
      nodeName: `node-${i % 8}`,
      counters: Object.fromEntries([[k, { count: 1, capacity: 50 }]]),
      lists: Object.fromEntries([[k, { capacity: 50, values: ['v'] }]]),
    }),
  );
}

/** The response's counters and lists are exactly the stored GameServer's, with integer counts (never NaN or undefined). */
function assertStatusMaps(res: { counters: Record<string, { count: string; capacity: string }>; lists: Record<string, { values: string[]; capacity: string }> }, stored: GameServer): void {
  assert.deepEqual(Object.keys(res.counters).sort(), Object.keys(stored.counters).sort(), 'response counters = stored counters');
  assert.deepEqual(Object.keys(res.lists).sort(), Object.keys(stored.lists).sort(), 'response lists = stored lists');
  for (const c of Object.values(res.counters)) assert.ok(/^\d+$/.test(c.count) && /^\d+$/.test(c.capacity), JSON.stringify(c));
  for (const l of Object.values(res.lists)) assert.ok(Array.isArray(l.values) && /^\d+$/.test(l.capacity), JSON.stringify(l));
}
