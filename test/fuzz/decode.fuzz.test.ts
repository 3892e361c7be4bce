// Coverage-guided fuzzing of both doors' decode path (see coverage-fuzzer.ts for why not Jazzer.js).
// FUZZ_ITERATIONS / FUZZ_TIME_MS lengthen the run (npm run reliability does).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RequestType } from '../../src/protocol/proto.ts';
import { jsonToBinary } from '../../src/protocol/proto-json.ts';
import { validRequest } from './arbitraries.ts';
import { fuzz } from './coverage-fuzzer.ts';
import { decodeBytes, decodeText, judge, judged } from './oracle.ts';
import { report } from '../reliability/report.ts';

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 2_000);
const TIME_MS = Number(process.env.FUZZ_TIME_MS ?? 8_000);
const FILES = ['src/protocol/', 'src/allocation/'];
const seeds = fc.sample(validRequest, { numRuns: 40, seed: 7 });
const WORDS = ['namespace', 'gameServerSelectors', 'preferredGameServerSelectors', 'requiredGameServerSelector', 'matchLabels', 'gameServerState',
  'players', 'counters', 'lists', 'minCount', 'maxCount', 'minAvailable', 'maxAvailable', 'containsValue', 'scheduling', 'metadata', 'metaPatch',
  'labels', 'annotations', 'priorities', 'type', 'key', 'order', 'action', 'amount', 'capacity', 'addValues', 'deleteValues', 'multiClusterSetting',
  'enabled', 'policySelector', 'READY', 'ALLOCATED', 'Packed', 'Distributed', 'Counter', 'List', 'Ascending', 'Descending', 'Increment', 'Decrement'];

test('coverage-guided: REST JSON bodies', async () => {
  const r = await fuzz({
    target: (b) => void judge(() => decodeText(b.toString('utf8'))),
    seeds: seeds.map((s) => Buffer.from(JSON.stringify(s))),
    files: FILES,
    iterations: ITERATIONS,
    timeMs: TIME_MS,
    dictionary: [...WORDS.map((w) => Buffer.from(`"${w}"`)), ...['{', '}', '[', ']', ':', ',', 'null', 'true', '-1', '1e400', '"9223372036854775808"', '{}', '[]'].map((t) => Buffer.from(t))],
  });
  report({ scenario: 'coverage-guided fuzzer: REST JSON', requests: r.executions, rps: r.executions / (r.ms / 1000), faults: 0, badInputs: judged.invalid, doubles: 0, lost: 0, p99Ms: NaN, rssGrowthMiB: NaN, note: `${r.features} coverage features, corpus ${r.corpus}` });
  judged.invalid = 0;
  console.log(`REST JSON: ${r.executions} inputs, corpus ${r.corpus}, ${r.features} coverage features, ${r.crashes.length} defects, ${(r.ms / 1000).toFixed(1)} s`);
  assert.deepEqual(r.crashes, []);
  assert.ok(r.features > 100, 'the fuzzer must reach the decode code');
});

test('coverage-guided: gRPC protobuf bytes', async () => {
  const r = await fuzz({
    target: (b) => void judge(() => decodeBytes(b)),
    seeds: seeds.map((s) => Buffer.from(jsonToBinary(s, RequestType))),
    files: [...FILES, 'protobufjs/src/reader', '@grpc/proto-loader'],
    iterations: ITERATIONS,
    timeMs: TIME_MS,
    dictionary: [0x0a, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x4a, 0x52, 0x5a, 0x10, 0x08].map((t) => Buffer.from([t])),
  });
  report({ scenario: 'coverage-guided fuzzer: gRPC protobuf', requests: r.executions, rps: r.executions / (r.ms / 1000), faults: 0, badInputs: judged.invalid, doubles: 0, lost: 0, p99Ms: NaN, rssGrowthMiB: NaN, note: `${r.features} coverage features, corpus ${r.corpus}` });
  console.log(`gRPC bytes: ${r.executions} inputs, corpus ${r.corpus}, ${r.features} coverage features, ${r.crashes.length} defects, ${(r.ms / 1000).toFixed(1)} s`);
  assert.deepEqual(r.crashes, []);
  assert.ok(r.features > 50, 'the fuzzer must reach the decode code');
});
