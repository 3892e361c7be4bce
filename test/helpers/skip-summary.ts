// Reads the skip reporter's JSON lines and prints what did not run, by name. Exit 1 when a
// suite CI must run (Kubernetes, reliability, clients) was skipped under CI=true, unless
// ALLOW_SKIPS=1 says so explicitly. Usage: node test/helpers/skip-summary.ts FILE...
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

export interface Skipped {
  readonly file: string;
  readonly name: string;
  readonly reason: string;
}

/** Suites whose absence hides what the project claims (real API servers, load and faults, clients in other languages). */
export const MUST_RUN_IN_CI = /^test\/(cluster|kubernetes|reliability|clients)\/|^test\/multicluster\/kubernetes\./;

/** A skip asked for by the caller (a language left out on purpose), not a missing tool. */
const CHOSEN = /^not in CLIENT_LANGS/;

export function readSkips(files: readonly string[]): Skipped[] {
  const out: Skipped[] = [];
  for (const f of files) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const s = JSON.parse(line) as Skipped;
      out.push({ ...s, file: s.file.startsWith('file://') ? relative(process.cwd(), new URL(s.file).pathname) : s.file ? relative(process.cwd(), s.file) : '' });
    }
  }
  return out;
}

/** Skips that fail a CI run. */
export function blocking(skips: readonly Skipped[]): Skipped[] {
  return skips.filter((s) => MUST_RUN_IN_CI.test(s.file) && !CHOSEN.test(s.reason));
}

if (import.meta.main) {
  const skips = readSkips(process.argv.slice(2));
  if (skips.length === 0) {
    console.log('skipped: none');
    process.exit(0);
  }
  console.log(`!! SKIPPED: ${skips.length} test${skips.length === 1 ? '' : 's'} or suite${skips.length === 1 ? '' : 's'} did not run`);
  for (const s of skips) console.log(`!!   ${s.file || '?'} › ${s.name}: ${s.reason || '(no reason given)'}`);
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const fatal = blocking(skips);
  if (ci && fatal.length > 0) {
    if (process.env.ALLOW_SKIPS === '1') console.log(`!! CI: ${fatal.length} of them are Kubernetes, reliability or client suites; allowed by ALLOW_SKIPS=1`);
    else {
      console.log(`!! CI: ${fatal.length} Kubernetes, reliability or client suite(s) skipped: failing the run (set ALLOW_SKIPS=1 to allow)`);
      process.exit(1);
    }
  }
}
