// Transport details of the two doors and the ops port: errors, limits, health, metrics.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { AllocatorError } from '../../src/client/index.ts';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { caught, startGateway } from '../helpers/gateway.ts';

describe('REST door', async () => {
  const certs = devCerts({ after });
  const gw = await startGateway({ after }, { certs, gameServers: readyPool(20) });

  test('body that is not JSON → 400 INVALID_ARGUMENT, nothing allocated', async () => {
    const r = await gw.rest(undefined, { raw: '{"namespace": nope' });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 3);
    assert.equal(r.body.details[0].reason, 'INVALID_FIELD');
    assert.match(r.body.message, /not valid JSON/);
  });

  const bad: [string, unknown, RegExp][] = [
    ['namespace of the wrong type', { namespace: 5 }, /^namespace: must be a string/],
    ['unknown enum name (agones-allocator silently ignores it)', { namespace: 'default', scheduling: 'Sideways' }, /^scheduling: must be one of "Packed", "Distributed"/],
    ['int64 that is not an integer', { namespace: 'default', gameServerSelectors: [{ counters: { c: { minCount: 'x' } } }] }, /^gameServerSelectors\[0\]\.counters\[c\]\.minCount: must be an integer/],
    ['label value with bad syntax', { namespace: 'default', metadata: { labels: { ok: 'bad value!' } } }, /^metadata\.labels\[ok\]: invalid value/],
    ['counter action without amount', { namespace: 'default', counters: { c: { action: 'Increment' } } }, /^counters\[c\]\.amount: required when action is set/],
    ['misspelt counter action (agones-allocator silently skips it)', { namespace: 'default', counters: { c: { action: 'increment', amount: 1 } } }, /^counters\[c\]\.action: must be "Increment" or "Decrement"/],
    ['a body that is an array', [], /^\(body\): must be a JSON object/],
    ['empty namespace (agones-allocator answers 429)', {}, /^namespace: required/],
  ];
  for (const [name, body, message] of bad) {
    test(`${name} → 400 naming the field`, async () => {
      const r = await gw.rest(body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 3);
      assert.match(r.body.message, message);
    });
  }

  test('several problems are reported together', async () => {
    const r = await gw.rest({ namespace: 'Bad_NS', gameServerSelectors: [{ counters: { c: { minCount: -1, maxCount: 0 } } }], priorities: [{ key: '' }] });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /namespace: invalid value/);
    assert.match(r.body.message, /gameServerSelectors\[0\]\.counters\[c\]\.minCount: must be greater than or equal to 0/);
    assert.match(r.body.message, /priorities\[0\]\.key: must not be empty/);
  });

  test('unknown fields are ignored, as agones-allocator does', async () => {
    const r = await gw.rest({ namespace: 'default', notAField: { deep: [1, 2] } });
    assert.equal(r.status, 200);
  });

  test('int64 fields accept numbers and strings and come back as strings', async () => {
    const r = await gw.rest({ namespace: 'default', gameServerSelectors: [{ counters: {} }], counters: { none: { action: 'Increment', amount: 2 } } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.counters, {});
    assert.deepEqual(r.body.lists, {});
  });

  test('wrong method → 405 with Allow, unknown path → 404', async () => {
    const m = await gw.rest(undefined, { method: 'GET' });
    assert.equal(m.status, 405);
    assert.equal(m.headers.allow, 'POST');
    const p = await gw.rest({}, { path: '/nope' });
    assert.equal(p.status, 404);
  });

  test('a body over 4 MiB → 413', async () => {
    const r = await gw.rest(undefined, { raw: JSON.stringify({ namespace: 'default', pad: 'x'.repeat(4 * 1024 * 1024) }) });
    assert.equal(r.status, 413);
  });

  test('the OpenAPI document is served', async () => {
    const r = await gw.rest(undefined, { method: 'GET', path: '/openapi.yaml' });
    assert.equal(r.status, 200);
    assert.match(String(r.body), /\/gameserverallocation:/);
  });

  test('grpc-timeout header bounds the call; the request id is echoed into the log', async () => {
    const r = await gw.rest({ namespace: 'default' }, { headers: { 'grpc-timeout': '5S', 'x-request-id': 'req-abc-123' } });
    assert.equal(r.status, 200);
    assert.ok(gw.logs.some((l) => l.reqId === 'req-abc-123' && l.outcome === 'OK' && l.gameServer === r.body.gameServerName));
  });
});

describe('gRPC door', async () => {
  const certs = devCerts({ after });
  const gw = await startGateway({ after }, { certs, gameServers: readyPool(5) });

  test('refusals carry a google.rpc.ErrorInfo with a stable reason', async () => {
    const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', gameServerSelectors: [{ matchLabels: { none: 'x' } }] }));
    assert.equal(err.codeName, 'RESOURCE_EXHAUSTED');
    assert.equal(err.reason, 'NO_GAME_SERVER');
    assert.equal(err.errorInfo?.domain, 'allocator-gateway');
    const bad = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', metadata: { labels: { 'bad key!': 'v' } } }));
    assert.equal(bad.codeName, 'INVALID_ARGUMENT');
    assert.equal(bad.reason, 'INVALID_FIELD');
    assert.equal(bad.errorInfo?.metadata.field, 'metadata.labels["bad key!"]'); // keys that are not plain are quoted
  });

  test('an expired deadline gets DEADLINE_EXCEEDED and allocates nothing', async () => {
    const before = gw.store.list().filter((g) => g.state === 'Allocated').length;
    const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default' }, { deadline: new Date(Date.now() - 1) }));
    assert.equal(err.codeName, 'DEADLINE_EXCEEDED');
    assert.equal(gw.store.list().filter((g) => g.state === 'Allocated').length, before);
  });

  test('multi-cluster requested without any policy → FAILED_PRECONDITION NO_POLICY', async () => {
    const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', multiClusterSetting: { enabled: true } }));
    assert.equal(err.codeName, 'FAILED_PRECONDITION');
    assert.equal(err.reason, 'NO_POLICY');
  });

  test('a message over 4 MiB is refused by the transport', async () => {
    const err = await caught<AllocatorError>(gw.client().allocate({ namespace: 'default', metadata: { annotations: { big: 'x'.repeat(5 * 1024 * 1024) } } }));
    assert.equal(err.codeName, 'RESOURCE_EXHAUSTED');
    assert.equal(err.reason, null, 'a transport limit, not a domain refusal');
  });

  test('grpc.health.v1 reports SERVING for the service and overall', async () => {
    const { HealthClient } = await healthClient();
    const client = new HealthClient(gw.grpcAddress, grpc.credentials.createSsl(readFileSync(certs.caFile), readFileSync(certs.clientKeyFile), readFileSync(certs.clientCertFile)), { 'grpc.ssl_target_name_override': 'localhost' });
    for (const service of ['', 'allocation.AllocationService']) {
      const res = await new Promise<{ status: string }>((resolve, reject) => (client as unknown as { check: (req: object, cb: (e: Error | null, r: { status: string }) => void) => void }).check({ service }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r))));
      assert.equal(res.status, 'SERVING');
    }
    client.close();
  });
});

describe('ops port', async () => {
  const certs = devCerts({ after });
  const gw = await startGateway({ after }, { certs, gameServers: readyPool(3), config: { shutdown: { readinessDrainMs: 500 } } });

  test('/live, /ready and /metrics over plain HTTP', async () => {
    assert.equal((await fetch(`${gw.opsUrl}/live`)).status, 200);
    assert.equal((await fetch(`${gw.opsUrl}/ready`)).status, 200);
    await gw.client().allocate({ namespace: 'default' });
    const text = await (await fetch(`${gw.opsUrl}/metrics`)).text();
    assert.match(text, /gateway_allocations_total\{door="grpc",outcome="OK",source="local"\} 1/);
    assert.match(text, /gateway_allocation_duration_seconds_bucket/);
    assert.equal((await fetch(`${gw.opsUrl}/nope`)).status, 404);
  });

  test('readiness turns false when the gateway drains', async () => {
    const stopping = gw.gateway.stop();
    // During the readiness drain the listeners still serve, but /ready says no.
    const r = await fetch(`${gw.opsUrl}/ready`);
    assert.equal(r.status, 503);
    assert.equal((await gw.client().allocate({ namespace: 'default' })).source, 'local');
    await stopping;
  });
});

async function healthClient(): Promise<{ HealthClient: grpc.ServiceClientConstructor }> {
  const { protoPath } = await import('grpc-health-check');
  const protoLoader = await import('@grpc/proto-loader');
  const def = protoLoader.loadSync(protoPath, { keepCase: true, enums: String });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return { HealthClient: pkg.grpc.health.v1.Health };
}
