// Property tests (fast-check) on the decode and validation path of both doors: every input is
// either accepted or refused with INVALID_FIELD naming the field; nothing else, and quickly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RequestType } from '../../src/protocol/proto.ts';
import { jsonToBinary } from '../../src/protocol/proto-json.ts';
import { anyJson, corruptedRequest, forgedAnnotationRequest, validRequest } from './arbitraries.ts';
import { decodeBytes, decodeText, judge, judged } from './oracle.ts';
import { report } from '../reliability/report.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// A fixed seed: a failure is reproduced by the same run (FUZZ_SEED picks another sequence).
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_301);
const params = (numRuns: number) => ({ numRuns, seed: SEED });

test('valid requests are accepted by the REST and the gRPC decode paths alike', () => {
  fc.assert(
    fc.property(validRequest, (req) => {
      assert.equal(judge(() => decodeText(JSON.stringify(req))), 'ok');
      // Both doors must yield the same request, every field of it, not just the namespace.
      const viaRest = decodeText(JSON.stringify(req));
      const viaGrpc = decodeBytes(jsonToBinary(req, RequestType));
      assert.deepEqual(viaGrpc, viaRest);
      assert.equal(viaGrpc.namespace, req.namespace);
    }),
    params(RUNS),
  );
});

test("a request setting one of the gateway's own annotations is refused on both paths, naming it", () => {
  fc.assert(
    fc.property(forgedAnnotationRequest, (req) => {
      for (const decode of [() => decodeText(JSON.stringify(req)), () => decodeBytes(jsonToBinary(req, RequestType))]) {
        assert.throws(decode, (e: Error) => /^(metadata|metaPatch)\.annotations\[[^\]]+\]: is reserved for the gateway/.test(e.message));
      }
    }),
    { numRuns: RUNS, seed: 44 },
  );
});

test('any JSON body: accepted or INVALID_FIELD naming the field', () => {
  fc.assert(fc.property(anyJson, (v) => void judge(() => decodeText(JSON.stringify(v)))), params(RUNS));
});

test('a valid request with one value anywhere replaced by anything: accepted or INVALID_FIELD naming the field', () => {
  fc.assert(fc.property(corruptedRequest, (v) => void judge(() => decodeText(JSON.stringify(v)))), params(RUNS * 3));
});

test('any bytes on the gRPC path: accepted or INVALID_FIELD', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => void judge(() => decodeBytes(b))), params(RUNS * 3));
});

test('valid requests with bytes flipped, cut or spliced: accepted or INVALID_FIELD', () => {
  fc.assert(
    fc.property(validRequest, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'dup'), (req, at, byte, how) => {
      const b = Buffer.from(jsonToBinary(req, RequestType));
      if (b.length === 0) return;
      const i = at % b.length;
      const mutated = how === 'flip' ? Buffer.from(b).fill(byte, i, i + 1) : how === 'cut' ? b.subarray(0, i) : Buffer.concat([b, b.subarray(i)]);
      judge(() => decodeBytes(mutated));
    }),
    params(RUNS * 3),
  );
});

/** Fastest of three runs of `fn` (ms): the least disturbed by other processes. */
function fastest(fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

// "Quickly" is relative to the machine, measured in the same moment: a refusal may cost a small
// multiple of what JSON.parse of the same text costs (the REST door parses it anyway), never a
// blow-up in the size of the input. Absolute bounds (500 ms) failed on a loaded 2-core machine.
test('bounded: huge maps, thousands of selectors, deep JSON and long strings are refused quickly, naming the field', () => {
  const refusals: [string, unknown, RegExp][] = [
    ['100k labels', { namespace: 'default', metadata: { labels: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 'v'])) } }, /^metadata\.labels: at most 256 entries/],
    ['200k selectors', { namespace: 'default', gameServerSelectors: Array.from({ length: 200_000 }, () => ({})) }, /^gameServerSelectors: at most 64 entries/],
    ['65 selectors', { namespace: 'default', gameServerSelectors: Array.from({ length: 65 }, () => ({})) }, /^gameServerSelectors: at most 64 entries/],
    ['50k list values', { namespace: 'default', lists: { l: { addValues: Array.from({ length: 50_000 }, (_, i) => `v${i}`) } } }, /^lists\[l\]\.addValues: at most 1000 entries/],
    ['100k priorities', { namespace: 'default', priorities: Array.from({ length: 100_000 }, () => ({ key: 'k' })) }, /^priorities: at most 32 entries/],
    ['1 MB annotation', { namespace: 'default', metadata: { annotations: { a: 'x'.repeat(1 << 20) } } }, /^metadata\.annotations: may not exceed/],
    ['deep known nesting', JSON.parse('{"namespace":"default","requiredGameServerSelector":'.repeat(1) + '{"matchLabels":{"a":{"b":{}}}}}'), /^requiredGameServerSelector\.matchLabels\[a\]: must be a string/],
  ];
  for (const [name, body, message] of refusals) {
    const text = JSON.stringify(body);
    assert.throws(() => decodeText(text), (e: Error) => message.test(e.message), name);
    const parseMs = fastest(() => JSON.parse(text));
    const refuseMs = fastest(() => assert.throws(() => decodeText(text)));
    console.log(`${name}: refused in ${refuseMs.toFixed(1)} ms, JSON.parse ${parseMs.toFixed(1)} ms`);
    assert.ok(refuseMs < 20 * parseMs + 50, `${name}: refused in ${refuseMs.toFixed(0)} ms, JSON.parse of the same text ${parseMs.toFixed(0)} ms`);
  }
  // 100k levels of unknown-field nesting are ignored (unknown fields are, as in Agones) without recursion.
  const deep = `{"namespace":"default","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  assert.equal(judge(() => decodeText(deep)), 'ok');
  // Two million empty selectors in 4 MB of protobuf: refused by the pre-scan, which stops at the
  // 65th selector; a decode of all of them would cost far more than one pass over the bytes.
  const bytes = Buffer.alloc(4_000_000);
  for (let i = 0; i < bytes.length; i += 2) bytes[i] = 0x42;
  assert.throws(() => decodeBytes(bytes), (e: Error) => /^gameServerSelectors: at most 64 entries allowed/.test(e.message));
  const passMs = fastest(() => void bytes.reduce((a, b) => a + b, 0));
  const refuseMs = fastest(() => assert.throws(() => decodeBytes(bytes)));
  console.log(`4 MB of selectors: refused in ${refuseMs.toFixed(1)} ms, one pass over the bytes ${passMs.toFixed(1)} ms`);
  assert.ok(refuseMs < passMs + 50, `4 MB of selectors refused in ${refuseMs.toFixed(0)} ms; one pass over them takes ${passMs.toFixed(0)} ms`);
});

test('(report)', () => report({ scenario: 'fast-check properties (decode path, both doors)', requests: judged.ok + judged.invalid, rps: NaN, faults: 0, badInputs: judged.invalid, doubles: 0, lost: 0, p99Ms: NaN, rssGrowthMiB: NaN }));
