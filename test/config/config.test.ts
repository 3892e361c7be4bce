// Configuration: file ← env ← flags, and readable errors listing every bad key.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
  const path = join(dir, 'gateway.yaml');
  writeFileSync(path, text);
  return path;
}

const BASE = `
tls: { certFile: s.crt, keyFile: s.key, clientCaDir: ca }
cluster: { kind: memory, fleetFile: fleets.yaml }
`;

test('file paths resolve against the file; env overrides the file; flags override env', () => {
  const path = file(`${BASE}grpc: { port: 1000 }\nrest: { port: 2000 }\n`);
  const c = loadConfig(['--config', path, '--grpc.port=3000'], { GATEWAY_GRPC__PORT: '1500', GATEWAY_REST__PORT: '2500', GATEWAY_ALLOCATION__MAX_WRITE_ATTEMPTS: '3' });
  assert.equal(c.grpc.port, 3000);
  assert.equal(c.rest.port, 2500);
  assert.equal(c.allocation.maxWriteAttempts, 3);
  assert.equal(c.tls.certFile, join(path, '..', 's.crt'));
  assert.equal(c.ops.port, 8080, 'defaults apply');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.tls), 'config is frozen');
});

test('every bad key is listed by path in one error', () => {
  const path = file('tls: { certFile: s.crt, keyFile: s.key, clientCaDir: ca }\ngrpc: { port: 70000 }\nallocation: { maxWriteAttempts: 0, writeTimeoutMs: 0, bogus: 1 }\ncluster: { kind: kubernetes, namespaces: [] }\n');
  assert.throws(
    () => loadConfig(['--config', path], {}),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /grpc\.port: /);
      assert.match(e.message, /allocation\.maxWriteAttempts: /);
      assert.match(e.message, /allocation\.writeTimeoutMs: /, 'a write timeout of 0 would leave writes unbounded');
      assert.match(e.message, /allocation: .*bogus/);
      assert.match(e.message, /cluster\.namespaces: /);
      return true;
    },
  );
});

test('a missing file and a bare argument are reported, not thrown raw', () => {
  assert.throws(() => loadConfig(['--config', '/nonexistent/x.yaml'], {}), /cannot read config file \/nonexistent\/x\.yaml/);
  assert.throws(() => loadConfig(['oops'], {}), /unexpected argument "oops"/);
});

test('the gateway exits with status 2 and a readable message on a bad config', () => {
  const r = spawnSync(process.execPath, [new URL('../../src/main.ts', import.meta.url).pathname, '--grpc.port=abc'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid configuration:/);
  assert.match(r.stderr, /grpc\.port: /);
  assert.match(r.stderr, /tls: /);
});
