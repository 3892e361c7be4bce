// Issue 12 item 8: what a caller is told is a stable reason and safe text. Remote error text,
// raw TLS/OpenSSL errors, file paths, endpoints in the message and replica names stay in the log.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { AllocatorError } from '../../src/client/index.ts';
import { packageDefinition } from '../../src/protocol/proto.ts';
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { caught, startGateway } from '../helpers/gateway.ts';
import { policy, policyDir } from '../multicluster/fixtures.ts';

const SECRET_TEXT = 'remote-internal-detail at /srv/agones/allocator/secret.key';

/** A remote allocation service on loopback that refuses every Allocate with `code` and revealing text. */
async function refusingRemote(t: TestContext, server: { certFile: string; keyFile: string }, ca: string, code: grpc.status): Promise<string> {
  const s = new grpc.Server();
  s.addService(packageDefinition['allocation.AllocationService'] as grpc.ServiceDefinition, {
    Allocate: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code, details: SECRET_TEXT }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(readFileSync(ca), [{ cert_chain: readFileSync(server.certFile), private_key: readFileSync(server.keyFile) }], true), (e, p) => (e ? reject(e) : resolve(p))),
  );
  t.after(() => s.forceShutdown());
  return `127.0.0.1:${port}`;
}

/** Everything a caller receives for an error: message and ErrorInfo. */
const told = (err: AllocatorError) => `${err.details}\n${JSON.stringify(err.errorInfo)}`;

function assertSafe(text: string, what: string): void {
  assert.doesNotMatch(text, /remote-internal-detail|\/srv\/agones/, `${what}: remote error text`);
  assert.doesNotMatch(text, /SSL|routines|certificate verify|self[- ]signed|unable to (get|verify)/i, `${what}: raw TLS text`);
  assert.ok(!text.includes(tmpdir()), `${what}: a file path`);
}

describe('caller-facing error text', () => {
  test('remote refusals, TLS failures and misconfigured secrets: reason and outcome only; details in the log', async (t) => {
    const certs: TestCerts = devCerts(t);
    const foreign = devCerts(t); // another PKI: its server certificate does not chain to ours
    const rejecting = await refusingRemote(t, { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile }, certs.caFile, grpc.status.INVALID_ARGUMENT);
    const failing = await refusingRemote(t, { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile }, certs.caFile, grpc.status.INTERNAL);
    const untrusted = await refusingRemote(t, { certFile: foreign.serverCertFile, keyFile: foreign.serverKeyFile }, foreign.caFile, grpc.status.INTERNAL);
    const MC = { enabled: true };
    const front = async (policies: object[]) => {
      const dir = policyDir(t, certs, policies);
      return await startGateway(t, { certs, config: { multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, connectTimeoutMs: 500 }, log: { level: 'debug' } } });
    };

    const a = await front([policy('rejecting', { priority: 1, endpoints: [rejecting] })]);
    const rejected = await caught<AllocatorError>(a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    assert.equal(rejected.reason, 'REMOTE_REJECTED');
    assertSafe(told(rejected), 'REMOTE_REJECTED');
    assert.ok(!rejected.details.includes(rejecting), 'endpoint in the message');
    assert.ok(a.logs.some((l) => JSON.stringify(l).includes('remote-internal-detail')), 'the remote text is logged for operators');

    const b = await front([
      policy('untrusted', { priority: 1, endpoints: [untrusted] }),
      policy('failing', { priority: 2, endpoints: [failing] }),
      policy('no-secret', { priority: 3, endpoints: [rejecting], secretName: 'missing-secret' }),
    ]);
    const failed = await caught<AllocatorError>(b.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 }));
    assert.equal(failed.reason, 'ALL_TARGETS_FAILED', failed.details);
    assertSafe(told(failed), 'ALL_TARGETS_FAILED');
    for (const endpoint of [untrusted, failing]) assert.ok(!failed.details.includes(endpoint), 'endpoint in the message');
    const attempts = JSON.parse(failed.errorInfo?.metadata.attempts ?? '[]') as Record<string, string>[];
    assert.deepEqual(attempts.map((x) => [x.target, x.outcome]), [['untrusted', 'failed'], ['failing', 'failed'], ['no-secret', 'misconfigured']]);
    assert.ok(b.logs.some((l) => /missing client certificate|missing-secret/.test(JSON.stringify(l))), 'the secret problem is logged');
  });
});
