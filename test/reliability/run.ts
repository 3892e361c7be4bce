// npm run reliability: the full (bounded) reliability suite, loopback only. Runs the fuzz and
// reliability test files one at a time at full size, then prints ONE table of their rows.
// Exit status: non-zero when a test failed or any scenario counted a double or lost allocation.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, table } from '../bench/harness.ts';
import type { ScenarioResult } from './load.ts';
import { ROW_TAG } from './report.ts';
import { readSkips } from '../helpers/skip-summary.ts';

const FILES = process.env.RELIABILITY_FILES ? process.env.RELIABILITY_FILES.split(' ') : [
  'test/fuzz/decode.property.test.ts',
  'test/fuzz/decode.fuzz.test.ts',
  'test/fuzz/doors.fuzz.test.ts',
  'test/fuzz/schemathesis.test.ts',
  'test/reliability/admission.test.ts',
  'test/reliability/authorization.test.ts',
  'test/reliability/deadlines.test.ts',
  'test/reliability/tls-hygiene.test.ts',
  'test/reliability/memory.test.ts',
  'test/reliability/kube.test.ts',
];
const BUDGET_MS = Number(process.env.RELIABILITY_BUDGET_MS ?? 45 * 60_000);
const env = {
  ...process.env,
  RELIABILITY_FULL: '1',
  FUZZ_RUNS: process.env.FUZZ_RUNS ?? '3000',
  FUZZ_ITERATIONS: process.env.FUZZ_ITERATIONS ?? '1000000',
  FUZZ_TIME_MS: process.env.FUZZ_TIME_MS ?? '90000',
  FUZZ_DOOR_RUNS: process.env.FUZZ_DOOR_RUNS ?? '2000',
  SCHEMATHESIS_EXAMPLES: process.env.SCHEMATHESIS_EXAMPLES ?? '1000',
};
const logFile = join(tmpdir(), `reliability-${Date.now()}.log`);
const skipFile = join(tmpdir(), `reliability-${Date.now()}.skips.jsonl`);
const log = createWriteStream(logFile);
const started = Date.now();
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=./test/helpers/skip-reporter.ts', `--test-reporter-destination=${skipFile}`, `--test-timeout=${BUDGET_MS}`, ...FILES], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
const killer = setTimeout(() => child.kill('SIGTERM'), BUDGET_MS).unref();
const rows: ScenarioResult[] = [];
let buffer = '';
let summary = '';
child.stdout.on('data', (c: Buffer) => {
  log.write(c);
  buffer += c.toString();
  let nl: number;
  while ((nl = buffer.indexOf('\n')) >= 0) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    const at = line.indexOf(ROW_TAG);
    if (at >= 0) rows.push(JSON.parse(line.slice(at + ROW_TAG.length)) as ScenarioResult);
    else if (/^[✔✖] /.test(line) || /^ℹ (tests|pass|fail|skipped)/.test(line)) {
      process.stderr.write(`${line}\n`);
      summary += `${line}\n`;
    }
  }
});
child.stderr.on('data', (c: Buffer) => log.write(c));
const code: number = await new Promise((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
clearTimeout(killer);
log.end();

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const out: (string | number)[][] = [['scenario', 'requests', 'load held (req/s)', 'faults injected', 'bad inputs tried', 'double allocations', 'lost allocations', 'p99 (ms)', 'RSS growth (MiB)']];
for (const r of rows) out.push([r.scenario, r.requests, fmt(r.rps), r.faults, r.badInputs, r.doubles, r.lost, fmt(r.p99Ms, 1), fmt(r.rssGrowthMiB, 1)]);
// What did not run is a row too: a skipped suite or test, and a file that printed no row at all.
const skips = readSkips([skipFile]);
const missing: string[] = [];
for (const s of skips) missing.push(`${s.file} › ${s.name}: ${s.reason || 'skipped'}`);
const tagged = new Set(rows.map((r) => r.file).filter(Boolean));
const reporting = FILES.filter((f) => readFileSync(join(ROOT, f), 'utf8').includes('report('));
for (const f of reporting) if (!tagged.has(f) && !skips.some((s) => s.file === f)) missing.push(`${f}: no scenario row (did it run?)`);
for (const name of new Set([...summary.matchAll(/^✖ (.*?) \([\d.]+m?s\)$/gm)].map((m) => m[1]!))) missing.push(`failed › ${name}: no row (see the log)`);
for (const m of missing) out.push([`MISSING ${m.slice(0, m.indexOf(':'))}`, 'missing', 'missing', 'missing', 'missing', 'missing', 'missing', 'missing', 'missing']);
const totals = rows.reduce((t, r) => ({ requests: t.requests + r.requests, faults: t.faults + r.faults, bad: t.bad + r.badInputs, doubles: t.doubles + r.doubles, lost: t.lost + r.lost }), { requests: 0, faults: 0, bad: 0, doubles: 0, lost: 0 });
out.push(['total', totals.requests, '', totals.faults, totals.bad, totals.doubles, totals.lost, '', '']);
console.log(`\nReliability (${((Date.now() - started) / 60_000).toFixed(1)} min, loopback only; log: ${logFile})\n`);
console.log(table(out));
const notes = rows.filter((r) => r.note).map((r) => `  ${r.scenario}: ${r.note}`);
if (notes.length > 0) console.log(`\nnotes:\n${notes.join('\n')}`);
if (missing.length > 0) console.log(`\n!! MISSING (${missing.length}): these did not run, so the totals above leave them out:\n${missing.map((m) => `!!   ${m}`).join('\n')}`);
// A run with missing rows is not a pass, unless ALLOW_SKIPS=1 says so explicitly.
const incomplete = missing.length > 0 && process.env.ALLOW_SKIPS !== '1';
const failed = code !== 0 || totals.doubles > 0 || totals.lost > 0 || incomplete;
if (failed) console.log(`\n!! ${code !== 0 ? `tests failed (exit ${code}); see the log` : ''}${totals.doubles + totals.lost > 0 ? ' double or lost allocations counted' : ''}${incomplete ? ' incomplete: rows missing (ALLOW_SKIPS=1 accepts that)' : ''}`);
process.exit(failed ? 1 : 0);
