// schemathesis (PyPI), in its own process, against our OpenAPI document as the gateway serves it
// (GET /openapi.yaml), over mTLS: no 5xx, responses conform to the document, schema-violating
// bodies are rejected; nothing is allocated by a rejected call and the ledger balances.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { startGateway } from '../helpers/gateway.ts';
import { auditedNames, auditLedger, snapshotMemory } from '../reliability/ledger.ts';
import { report } from '../reliability/report.ts';

const EXAMPLES = Number(process.env.SCHEMATHESIS_EXAMPLES ?? 150);

function schemathesisPath(): string | { missing: string } {
  const r = spawnSync('bash', [new URL('./schemathesis.sh', import.meta.url).pathname], { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return r.stdout.trim();
  return { missing: `schemathesis could not be installed (${r.status}): ${r.stderr.slice(-300)}` };
}

const bin = schemathesisPath();

test(`schemathesis against GET /openapi.yaml over mTLS (${EXAMPLES} examples per phase)`, { skip: typeof bin === 'string' ? false : bin.missing }, async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs, gameServers: readyPool(2_000, { nodes: 8 }) });
  const before = snapshotMemory(gw.store);
  const dir = mkdtempSync(join(tmpdir(), 'gw-st-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = [
    'run', `${gw.restUrl}/openapi.yaml`, '--url', gw.restUrl,
    '--tls-verify', certs.caFile, '--request-cert', certs.clientCertFile, '--request-cert-key', certs.clientKeyFile,
    '--checks', 'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection',
    '--phases', 'examples,coverage,fuzzing', '-n', String(EXAMPLES), '--seed', '1', '--workers', '2',
    '--generation-database', 'none', '--report', 'junit', '--report-dir', dir, '--no-color',
  ];
  let out = '';
  let status = 0;
  try {
    // Asynchronously: the gateway under test lives in this process's event loop. In a temp dir:
    // schemathesis keeps run state (.hypothesis, .schemathesis) in its working directory.
    out = (await promisify(execFile)(bin as string, args, { cwd: dir, encoding: 'utf8', timeout: 240_000, maxBuffer: 32 << 20, env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' } })).stdout;
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    status = typeof e.code === 'number' ? e.code : -1;
    out = `${e.stdout}\n${e.stderr}`;
  }
  let junit = '';
  try {
    junit = readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.xml'))!), 'utf8');
  } catch {
    // no report: the output says why
  }
  const cases = Number(/tests="(\d+)"/.exec(junit)?.[1] ?? 0);
  console.log(out.split('\n').filter((l) => /passed|failed|errors?|test cases|Test cases|generated|Summary|API Operations/i.test(l)).slice(-12).join('\n'));
  assert.equal(status, 0, out.slice(-4_000));
  assert.ok(cases >= 1);
  assert.ok(!gw.logs.some((l) => l.outcome === 'INTERNAL'));
  // Every allocation the fuzzer caused was answered 200 and audited; nothing else is Allocated.
  const audited = auditedNames(gw.logs);
  const audit = auditLedger({ before, after: snapshotMemory(gw.store), told: audited, audited });
  assert.deepEqual(audit.problems, []);
  assert.equal(audit.doubles + audit.lost, 0);
  const generated = Number(/(\d+) generated/.exec(out)?.[1] ?? cases);
  const refused = gw.logs.filter((l) => l.audit === true && l.outcome === 'INVALID_FIELD').length;
  report({ scenario: 'schemathesis (OpenAPI, mTLS)', requests: generated, rps: NaN, faults: 0, badInputs: refused, doubles: audit.doubles, lost: audit.lost, p99Ms: NaN, rssGrowthMiB: NaN });
  console.log(`schemathesis: ${gw.logs.filter((l) => l.audit === true).length} calls reached Allocate, ${audit.reported} allocations, ledger balanced`);
});
