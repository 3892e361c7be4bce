// Clients in every language against a real gateway: stubs generated from proto/ by gen.sh,
// clients built by build.sh, each run as a separate process against a gateway listening on
// 127.0.0.1 with real mTLS. Also: refusal without a client certificate or with one from
// another CA, and grpcurl through server reflection (no proto file).
//
// A language whose toolchain is missing is skipped with the reason. CLIENT_LANGS limits the
// languages (default "go python cpp java"); PROTO_DIR makes gen.sh generate from another proto
// tree (the clients must then fail if it differs on the wire).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { devCerts, type Pair } from '../helpers/certs.ts';
import { startGateway } from '../helpers/gateway.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GEN_SH = fileURLToPath(new URL('./gen.sh', import.meta.url));
const BUILD_SH = fileURLToPath(new URL('./build.sh', import.meta.url));
const LANGS = ['go', 'python', 'cpp', 'java'] as const;
type Lang = (typeof LANGS)[number];
const WANTED = new Set((process.env.CLIENT_LANGS ?? LANGS.join(' ')).split(/[\s,]+/).filter(Boolean));

/** Two fleets in one namespace; the clients select the ranked one by label. */
const FLEET = {
  nodes: [
    { name: 'node-a', addresses: [{ type: 'InternalIP', address: '10.30.0.1' }, { type: 'Hostname', address: 'node-a' }] },
    { name: 'node-b', addresses: [{ type: 'InternalIP', address: '10.30.0.2' }] },
  ],
  fleets: [
    { name: 'casual', namespace: 'default', replicas: 6, labels: { mode: 'casual' }, ports: [{ name: 'default', basePort: 7000 }] },
    {
      name: 'ranked',
      namespace: 'default',
      replicas: 6,
      labels: { mode: 'ranked' },
      ports: [{ name: 'default', basePort: 7100 }, { name: 'voice', basePort: 7200 }],
    },
  ],
};

interface Result {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

// The clients read ALLOCATOR_* when a flag is absent: keep the test's own environment out.
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ALLOCATOR_')));

/** Runs a command without blocking the event loop (the gateway serves from this process). */
function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<Result> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = (code: number | null, signal: NodeJS.Signals | null, extra = '') =>
      resolve({ code, signal, stdout, stderr: stderr + extra, seconds: (performance.now() - t0) / 1000 });
    child.on('error', (err) => done(null, null, `\nspawn ${cmd}: ${err.message}`));
    child.on('close', (code, signal) => done(code, signal));
  });
}

/** Each client prints "Allocate: <status>" when the call fails; a refused handshake is UNAVAILABLE (14). */
const REFUSED = /Allocate: .*(UNAVAILABLE|Unavailable|\b14:)/;
const lastLine = (s: string): string => s.trim().split('\n').at(-1) ?? '';
const describe = (r: Result): string => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

type Built = { readonly path: string } | { readonly skip: string };

/** Builds one client (or grpcurl) with build.sh: exit 3 means "skip, toolchain missing". */
async function build(what: Lang | 'grpcurl'): Promise<Built> {
  const r = await run('bash', [BUILD_SH, what], 10 * 60_000);
  if (r.code === 3) return { skip: lastLine(r.stdout).replace(/^SKIP: /, '') };
  assert.equal(r.code, 0, `build.sh ${what} failed\n${describe(r)}`);
  return { path: lastLine(r.stdout) };
}

test('clients generated from proto/ in every language, against a real gateway over mTLS', { timeout: 20 * 60_000 }, async (t) => {
  // 1. Stubs (gen.sh skips the work when gen/ already matches the inputs).
  const gen = await run('bash', [GEN_SH, '--if-stale'], 10 * 60_000);
  assert.equal(gen.code, 0, `gen.sh failed\n${describe(gen)}`);
  t.diagnostic(`gen.sh --if-stale: ${gen.seconds.toFixed(1)} s`);

  // 2. Every build at once (they overlap with the gateway's start and with each other).
  const builds = new Map<Lang | 'grpcurl', Promise<Built>>();
  for (const what of [...LANGS.filter((l) => WANTED.has(l)), 'grpcurl'] as const) {
    const t0 = performance.now();
    builds.set(
      what,
      build(what).then((b) => {
        t.diagnostic(`build.sh ${what}: ${'skip' in b ? `skipped (${b.skip})` : 'ok'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        return b;
      }),
    );
  }
  // Never leave a rejected build unobserved if the test stops early.
  for (const p of builds.values()) p.catch(() => {});

  // 3. A real gateway on 127.0.0.1 with real mTLS, and a second PKI whose client must be refused.
  const certs = devCerts(t);
  const foreign = devCerts(t, 'intruder');
  const gw = await startGateway(t, { certs, fleet: FLEET });
  const ranked = new Map(gw.store.list().filter((gs) => gs.labels.mode === 'ranked').map((gs) => [gs.name, gs]));
  const allNames = new Set(gw.store.list().map((gs) => gs.name));

  const clientArgs = (pair: Pair | null, label: string): string[] => [
    '--addr', gw.grpcAddress,
    '--ca', certs.caFile,
    '--cert', pair?.certFile ?? '',
    '--key', pair?.keyFile ?? '',
    '--namespace', 'default',
    '--selector', 'mode=ranked',
    '--label', `owner=${label}`,
  ];
  const allocatedCount = () => gw.store.list().filter((gs) => gs.state === 'Allocated').length;

  async function builtOrSkip(st: TestContext, what: Lang | 'grpcurl'): Promise<string | undefined> {
    const b = await builds.get(what)!;
    if ('skip' in b) {
      st.skip(b.skip);
      return undefined;
    }
    return b.path;
  }

  for (const lang of LANGS) {
    await t.test(`${lang} client`, async (st) => {
      if (!WANTED.has(lang)) return st.skip(`not in CLIENT_LANGS (${[...WANTED].join(' ')})`);
      const bin = await builtOrSkip(st, lang);
      if (!bin) return;

      await st.test('allocates from the selected fleet and prints the response as JSON', async () => {
        const label = `clients-${lang}`;
        const r = await run(bin, clientArgs(certs.client, label), 60_000);
        assert.equal(r.code, 0, describe(r));
        let resp: any;
        try {
          resp = JSON.parse(lastLine(r.stdout));
        } catch {
          assert.fail(`last line of stdout is not JSON\n${describe(r)}`);
        }
        const gs = ranked.get(resp.gameServerName);
        assert.ok(gs, `gameServerName ${JSON.stringify(resp.gameServerName)} is not a GameServer of the ranked fleet\n${describe(r)}`);
        assert.equal(resp.address, gs.address);
        assert.deepEqual(resp.ports, gs.ports.map((p) => ({ name: p.name, port: p.port })));
        assert.equal(resp.nodeName, gs.nodeName);
        assert.equal(resp.source, 'local');
        assert.equal(resp.metadata?.labels?.owner, label, 'the metadata label reached the gateway and came back');
        const after = gw.store.get('default', resp.gameServerName);
        assert.equal(after?.state, 'Allocated');
        assert.equal(after?.labels.owner, label);
        st.diagnostic(`${lang}: ${resp.gameServerName} in ${r.seconds.toFixed(2)} s`);
      });

      await st.test('is refused without a client certificate', async () => {
        const before = allocatedCount();
        const r = await run(bin, clientArgs(null, 'no-cert'), 60_000);
        assert.notEqual(r.code, 0, `allocated without a client certificate\n${describe(r)}`);
        assert.match(r.stderr, REFUSED, describe(r));
        assert.equal(allocatedCount(), before);
      });

      await st.test('is refused with a client certificate from another CA', async () => {
        const before = allocatedCount();
        const r = await run(bin, clientArgs(foreign.client, 'foreign'), 60_000);
        assert.notEqual(r.code, 0, `allocated with a foreign client certificate\n${describe(r)}`);
        assert.match(r.stderr, REFUSED, describe(r));
        assert.equal(allocatedCount(), before);
      });
    });
  }

  await t.test('TypeScript types from proto-loader-gen-types type-check', async (st) => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'gen/manifest.json'), 'utf8'));
    if (!manifest.languages?.ts?.ok) return st.skip(manifest.languages?.ts?.reason ?? 'gen.sh made no TypeScript types');
    const entries = readdirSync(join(ROOT, 'gen/ts')).filter((f) => f.endsWith('.ts')).map((f) => join(ROOT, 'gen/ts', f));
    const r = await run(join(ROOT, 'node_modules/.bin/tsc'), [
      '--noEmit', '--strict', '--target', 'es2023', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--allowImportingTsExtensions', '--verbatimModuleSyntax', '--erasableSyntaxOnly', '--skipLibCheck', '--types', 'node',
      ...entries,
    ], 120_000);
    assert.equal(r.code, 0, describe(r));
  });

  await t.test('grpcurl through server reflection, without a proto file', async (st) => {
    const grpcurl = await builtOrSkip(st, 'grpcurl');
    if (!grpcurl) return;
    const tls = ['-cacert', certs.caFile, '-cert', certs.clientCertFile, '-key', certs.clientKeyFile];

    await st.test('list shows allocation.AllocationService', async () => {
      const r = await run(grpcurl, [...tls, gw.grpcAddress, 'list'], 60_000);
      assert.equal(r.code, 0, describe(r));
      assert.ok(r.stdout.split('\n').includes('allocation.AllocationService'), describe(r));
    });

    await st.test('Allocate with a JSON body', async (sst) => {
      const r = await run(grpcurl, [...tls, '-d', '{"namespace":"default"}', gw.grpcAddress, 'allocation.AllocationService/Allocate'], 60_000);
      // @grpc/reflection serves proto-loader's descriptors, which lack the import of
      // google/protobuf/wrappers.proto (grpc/grpc-node#2958): grpcurl cannot resolve
      // google.protobuf.Int64Value. Reported; this passes by itself once the server is fixed.
      if (r.code !== 0 && /cannot resolve type: "\*\.google\.protobuf\./.test(r.stderr)) {
        sst.todo(`server reflection omits google/protobuf/wrappers.proto: ${lastLine(r.stderr)}`);
        return;
      }
      assert.equal(r.code, 0, describe(r));
      const resp = JSON.parse(r.stdout);
      assert.ok(allNames.has(resp.gameServerName), describe(r));
      assert.equal(resp.source, 'local');
      assert.ok(resp.address);
      assert.ok(Array.isArray(resp.ports) && resp.ports.length > 0, describe(r));
    });
  });
});
