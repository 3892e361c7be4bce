// The status page on the ops port, loaded in headless Chromium (Debian's package) against a
// running gateway whose policies route to a dead endpoint and then to a healthy remote gateway:
// it shows each endpoint's health and breaker, latency, advertised capacity and last attempts,
// refreshes itself, and carries nothing secret.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startFallThrough } from './fixtures.ts';

const run = promisify(execFile);

/** The Chromium binary, or null (then the browser checks are skipped, loudly). */
async function chromium(): Promise<string | null> {
  for (const bin of [process.env.CHROMIUM ?? '', 'chromium', 'chromium-browser']) {
    if (!bin) continue;
    try {
      await run(bin, ['--version']);
      return bin;
    } catch {
      // next candidate
    }
  }
  return null;
}

/** Headless Chromium with its own profile; --no-sandbox because tests run as root in CI. */
function browse(bin: string, profile: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(bin, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${profile}`, ...args], {
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** The <tr class="endpoint"> of `endpoint` in the dumped DOM, with its attributes and text. */
function endpointRow(dom: string, endpoint: string): { health: string; breaker: string; text: string } {
  const m = new RegExp(`<tr class="endpoint" data-endpoint="${endpoint.replaceAll('.', '\\.')}" data-health="([\\w-]+)" data-breaker="([\\w-]+)">(.*?)</tr>`, 's').exec(dom);
  assert.ok(m, `a row for ${endpoint}`);
  return { health: m[1]!, breaker: m[2]!, text: m[3]!.replace(/<[^>]+>/g, ' ') };
}

describe('status page', async () => {
  const { front, healthy, dead } = await startFallThrough({ after });
  const MC = { namespace: 'default', multiClusterSetting: { enabled: true } };
  const c = front.client();
  // Six fall-throughs: the dead endpoint's breaker opens after five failures (volumeThreshold 5).
  for (let i = 0; i < 6; i++) assert.equal((await c.allocate(MC)).source, healthy.grpcAddress);

  test('/status.json: the routes of the namespace with breaker, latency, capacity and last attempts; nothing secret', async () => {
    const res = await fetch(`${front.opsUrl}/status.json`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const s = JSON.parse(text);
    const ns = s.namespaces.find((n: any) => n.namespace === 'default');
    assert.deepEqual(ns.routes.map((r: any) => [r.target, r.kind]), [['cluster-local', 'local'], ['cluster-dead', 'remote'], ['cluster-healthy', 'remote']]);
    const [, gone, there] = ns.routes;
    assert.equal(gone.endpoints[0].endpoint, dead);
    assert.equal(gone.endpoints[0].breaker, 'open');
    assert.equal(gone.endpoints[0].health, 'failing');
    assert.equal(there.endpoints[0].health, 'healthy');
    assert.equal(there.endpoints[0].breaker, 'closed');
    assert.equal(there.endpoints[0].attempts, 6);
    assert.ok(there.endpoints[0].latencyMs > 0);
    assert.equal(there.endpoints[0].last[0].outcome, 'allocated');
    // The healthy gateway advertises its capacity (20 Ready, 6 of them now Allocated — as of its last advertisement).
    assert.equal(there.advertised.kind, 'capacity');
    assert.equal(there.advertised.ready + there.advertised.allocated, 20);
    assert.ok(s.recentAttempts.length >= 7);
    // No secret name, no PEM, no key material.
    assert.doesNotMatch(text, /remote-client|BEGIN|PRIVATE|secretName/);
  });

  const bin = await chromium();
  test('headless Chromium shows the healthy and the dead remote as they are, and a screenshot', { skip: bin === null ? 'chromium not installed (bash test/deploy/tools.sh chromium)' : false }, async () => {
    if (bin === null) return;
    const out = mkdtempSync(join(tmpdir(), 'gw-status-page-'));
    const url = `${front.opsUrl}/status`;
    const { stdout: dom } = await browse(bin, join(out, 'profile-dom'), ['--dump-dom', url]);
    assert.match(dom, /<title>allocator-gateway status<\/title>/);
    assert.match(dom, /<meta http-equiv="refresh" content="\d+">/, 'refreshes itself');
    assert.match(dom, /id="ready" class="badge healthy">ready</);
    const gone = endpointRow(dom, dead);
    assert.deepEqual([gone.health, gone.breaker], ['failing', 'open']);
    assert.match(gone.text, /UNAVAILABLE|failed/);
    const there = endpointRow(dom, healthy.grpcAddress);
    assert.deepEqual([there.health, there.breaker], ['healthy', 'closed']);
    assert.match(there.text, /allocated/);
    assert.match(there.text, /\d+(\.\d)? ms/);
    assert.match(dom, /data-target="cluster-healthy" data-kind="remote">.*?capacity: <span class="capacity">Ready \d+ · Allocated \d+/s);
    assert.match(dom, /<table id="recent">/);
    assert.doesNotMatch(dom, /remote-client|BEGIN|PRIVATE/);

    const png = join(out, 'status-page.png');
    await browse(bin, join(out, 'profile-shot'), [`--screenshot=${png}`, '--window-size=1280,900', url]);
    const bytes = readFileSync(png);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    assert.ok(statSync(png).size > 10_000, `a real rendering (${statSync(png).size} bytes)`);
    if (process.env.STATUS_PAGE_PNG) copyFileSync(png, process.env.STATUS_PAGE_PNG);
    console.log(`status page screenshot: ${png}`);
  });

  test('the ops port serves the page with a CSP that allows no script', async () => {
    const res = await fetch(`${front.opsUrl}/status`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.doesNotMatch(await res.text(), /<script/);
    const root = await fetch(`${front.opsUrl}/`, { redirect: 'manual' });
    assert.equal(root.headers.get('location'), '/status');
  });
});
if (!(await chromium())) console.warn('!! chromium is not installed: the status page browser check is SKIPPED (bash test/deploy/tools.sh chromium)');
