// A small coverage-guided mutational fuzzer for JavaScript targets. Jazzer.js does not run on
// this machine (its prebuilt libFuzzer addon needs glibc 2.38; Debian 12 has 2.36, and building
// it fetches Node headers from outside the package registries), so this uses V8's own block
// coverage through the inspector: an input that executes a block (or a hit-count bucket of one)
// never seen before joins the corpus and is mutated further.
import { Session } from 'node:inspector/promises';

export interface FuzzOptions {
  /** Throws on a defect; returns normally for accepted or correctly refused input. */
  readonly target: (input: Buffer) => void;
  readonly seeds: readonly Buffer[];
  /** Substrings of script URLs whose coverage guides the search (e.g. 'src/protocol/'). */
  readonly files: readonly string[];
  readonly iterations: number;
  readonly timeMs: number;
  /** Tokens spliced into inputs (JSON keys, enum names, protobuf tags). */
  readonly dictionary?: readonly Buffer[];
  readonly maxLength?: number;
  readonly seed?: number;
}

export interface FuzzReport {
  readonly executions: number;
  readonly corpus: number;
  /** Distinct (block, hit bucket) pairs covered in the guiding files. */
  readonly features: number;
  readonly crashes: { readonly input: string; readonly error: string }[];
  readonly ms: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x22, 0x5b, 0x5d, 0x7b, 0x7d, 0x2c, 0x3a, 0x2d, 0x30, 0x39, 0x0a, 0x08, 0x10, 0x12, 0x1a, 0x42];

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const random = rng(o.seed ?? 0x9e3779b9);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const maxLength = o.maxLength ?? 4096;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const seen = new Set<string>();
  const measure = async (): Promise<number> => {
    const { result } = await session.post('Profiler.takePreciseCoverage');
    let fresh = 0;
    for (const script of result) {
      if (!o.files.some((f) => script.url.includes(f))) continue;
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const key = `${script.scriptId}:${r.startOffset}:${r.endOffset}:${Math.min(8, Math.floor(Math.log2(r.count)))}`;
          if (!seen.has(key)) {
            seen.add(key);
            fresh++;
          }
        }
      }
    }
    return fresh;
  };
  const crashes: { input: string; error: string }[] = [];
  const run = (input: Buffer): void => {
    try {
      o.target(input);
    } catch (err) {
      if (crashes.length < 20) crashes.push({ input: input.toString('base64'), error: (err as Error).message.slice(0, 300) });
    }
  };
  const corpus: Buffer[] = [];
  await measure(); // drop what ran before
  for (const s of o.seeds) {
    run(s);
    if ((await measure()) > 0) corpus.push(s);
  }
  if (corpus.length === 0) corpus.push(Buffer.from('{}'));

  const mutate = (b: Buffer): Buffer => {
    let out = Buffer.from(b);
    const rounds = 1 + Math.floor(random() * 4);
    for (let i = 0; i < rounds; i++) {
      const at = out.length === 0 ? 0 : Math.floor(random() * out.length);
      switch (Math.floor(random() * 8)) {
        case 0: if (out.length) out[at] = out[at]! ^ (1 << Math.floor(random() * 8)); break;
        case 1: if (out.length) out[at] = pick(INTERESTING); break;
        case 2: out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + Math.floor(random() * 8)))]); break;
        case 3: { const len = Math.floor(random() * 16); const from = Math.floor(random() * Math.max(1, out.length - len)); out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + len), out.subarray(at)]); break; }
        case 4: if (o.dictionary?.length) out = Buffer.concat([out.subarray(0, at), pick(o.dictionary), out.subarray(at)]); break;
        case 5: { const other = pick(corpus); const cut = Math.floor(random() * other.length); out = Buffer.concat([out.subarray(0, at), other.subarray(cut)]); break; }
        case 6: out = Buffer.concat([out.subarray(0, at), Buffer.from([Math.floor(random() * 256)]), out.subarray(at)]); break;
        default: if (out.length) out[at] = (out[at]! + (random() < 0.5 ? 1 : -1)) & 0xff;
      }
    }
    return out.length > maxLength ? out.subarray(0, maxLength) : out;
  };

  const started = performance.now();
  let executions = 0;
  while (executions < o.iterations && performance.now() - started < o.timeMs) {
    const input = mutate(pick(corpus));
    run(input);
    executions++;
    if ((await measure()) > 0) corpus.push(input);
  }
  await session.post('Profiler.stopPreciseCoverage');
  session.disconnect();
  return { executions, corpus: corpus.length, features: seen.size, crashes, ms: performance.now() - started };
}
