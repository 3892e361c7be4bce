// Scenario rows travel from test files to the reliability runner as tagged stdout lines.
import { relative } from 'node:path';
import type { ScenarioResult } from './load.ts';

export const ROW_TAG = 'RELIABILITY_ROW ';

/** true under `npm run reliability` (full sizes); false in `npm test` (short). */
export const FULL = process.env.RELIABILITY_FULL === '1';

/** Prints a row for the runner's table (and for a person reading the test output). */
export function report(row: ScenarioResult | ScenarioResult[]): void {
  // node --test runs each file in its own process: argv[1] names the file the row came from.
  const file = process.argv[1] ? relative(process.cwd(), process.argv[1]) : '';
  for (const r of Array.isArray(row) ? row : [row]) console.log(`${ROW_TAG}${JSON.stringify({ ...r, file })}`);
}
