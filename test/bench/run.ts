// `npm run bench`: every benchmark, each printing its figures next to a baseline measured in the
// same run, then every figure against its design.md target. BENCH_ONLY=embedded,forwarding,kubernetes
// picks some. `npm run bench -- --check` exits 1 when a figure misses its target or was not
// measured (a benchmark left out by BENCH_ONLY is not checked; ALLOW_SKIPS=1 accepts unmeasured ones).
import { benchEmbedded } from './embedded.ts';
import { benchForwarding } from './forwarding.ts';
import { checksTable, meets, type TargetCheck } from './harness.ts';
import { benchKubernetes } from './kubernetes.ts';

const check = process.argv.includes('--check');
const only = new Set((process.env.BENCH_ONLY ?? 'embedded,forwarding,kubernetes').split(','));
const started = Date.now();
const checks: TargetCheck[] = [];
const show = (r: { text: string; checks: readonly TargetCheck[] }) => {
  console.log(`${r.text}\n`);
  checks.push(...r.checks);
};

if (only.has('embedded')) show(await benchEmbedded({ total: Number(process.env.BENCH_CALLS ?? 20_000) }));
if (only.has('forwarding')) show(await benchForwarding({ total: Number(process.env.BENCH_FORWARDING_CALLS ?? 5_000), concurrency: 8 }));
if (only.has('kubernetes')) show(await benchKubernetes());
console.log(`== targets (design.md), every figure measured in this run with the gateway's default settings\n${checksTable(checks)}`);
console.log(`\nbenchmarks done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (check) {
  const missed = checks.filter((c) => Number.isFinite(c.measured) && !meets(c));
  const unmeasured = checks.filter((c) => !Number.isFinite(c.measured));
  const fail = missed.length > 0 || (unmeasured.length > 0 && process.env.ALLOW_SKIPS !== '1');
  if (missed.length > 0) console.log(`!! --check: ${missed.length} figure(s) missed their target: ${missed.map((c) => c.figure).join('; ')}`);
  if (unmeasured.length > 0) console.log(`!! --check: ${unmeasured.length} figure(s) not measured${process.env.ALLOW_SKIPS === '1' ? ' (allowed by ALLOW_SKIPS=1)' : ''}: ${unmeasured.map((c) => c.figure).join('; ')}`);
  process.exit(fail ? 1 : 0);
}
