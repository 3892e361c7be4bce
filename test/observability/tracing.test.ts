// Traces across gateways: a real OTLP/HTTP receiver on 127.0.0.1 collects the spans of two gateway
// processes; a REST call carrying a W3C traceparent falls through the front's empty local cluster
// to the remote gateway, and the spans form one tree under the caller's span: front Allocate →
// local pick, remote attempt → the remote's Allocate → its local pick and GameServer write.
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { startSpan, tracingEnabled } from '../../src/observability/tracing.ts';
import { devCerts } from '../helpers/certs.ts';
import { simpleFleet, startGatewayProcess } from '../helpers/gateway-process.ts';
import { restCall } from '../helpers/gateway.ts';
import { policy, policyDir } from '../multicluster/fixtures.ts';

interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly status: { code?: number; message?: string };
}

/** A minimal OTLP/HTTP (JSON) traces receiver. */
async function otlpReceiver(t: { after(fn: () => Promise<void> | void): void }): Promise<{ url: string; spans: ReceivedSpan[]; requests: () => number }> {
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  const value = (v: any): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue ?? v.doubleValue);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString());
      for (const rs of body.resourceSpans ?? []) {
        const service = String(value((rs.resource?.attributes ?? []).find((a: any) => a.key === 'service.name')?.value ?? {}));
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind,
              attributes: Object.fromEntries((s.attributes ?? []).map((a: any) => [a.key, value(a.value)])), status: s.status ?? {},
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`, spans, requests: () => requests };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('tracing', async () => {
  test('off by default: no tracer, and every span is the same no-op', () => {
    assert.equal(tracingEnabled(), false);
    const a = startSpan('a', { x: 1 });
    assert.equal(a, startSpan('b'));
    assert.deepEqual(a.headers(), {});
    assert.equal(a.run(() => 7), 7);
  });

  const certs = devCerts({ after });
  const receiver = await otlpReceiver({ after });
  const remote = await startGatewayProcess({ after }, { certs, name: 'remote', fleet: simpleFleet('remote', 5), config: { tracing: { otlpEndpoint: receiver.url, serviceName: 'gw-remote' } } });
  const dir = policyDir({ after }, certs, [policy('here', { priority: 1, cluster: 'cluster-a' }), policy('there', { priority: 2, endpoints: [remote.address], cluster: 'cluster-b' })]);
  const front = await startGatewayProcess({ after }, {
    certs,
    name: 'front',
    fleet: simpleFleet('local', 0),
    config: { tracing: { otlpEndpoint: receiver.url, serviceName: 'gw-front' }, multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir } },
  });

  test('a fall-through local → remote is one trace under the caller span, continued by the remote gateway', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const r = await restCall(`https://127.0.0.1:${front.restPort}/gameserverallocation`, {
      ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), method: 'POST',
      headers: { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=abc' },
      body: JSON.stringify({ namespace: 'default', multiClusterSetting: { enabled: true } }),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.source, remote.address);
    const mine = () => receiver.spans.filter((s) => s.traceId === traceId);
    await until('front and remote spans exported', () => {
      const s = mine();
      return s.some((x) => x.service === 'gw-front' && x.name === 'Allocate') && s.some((x) => x.service === 'gw-remote' && x.name === 'GameServer write') ? true : undefined;
    });
    const spans = mine();
    const one = (service: string, name: string) => {
      const found = spans.filter((s) => s.service === service && s.name === name);
      assert.equal(found.length, 1, `one ${name} span of ${service}: ${JSON.stringify(spans.map((s) => [s.service, s.name]))}`);
      return found[0]!;
    };
    const root = one('gw-front', 'Allocate');
    assert.equal(root.parentSpanId, callerSpan, 'the front continues the caller trace');
    assert.equal(root.kind, 2, 'SERVER');
    assert.equal(root.attributes['allocator_gateway.outcome'], 'OK');
    assert.equal(root.attributes['allocator_gateway.source'], remote.address);
    const pick = one('gw-front', 'local pick');
    assert.equal(pick.parentSpanId, root.spanId);
    assert.equal(pick.attributes['allocator_gateway.outcome'], 'NO_GAME_SERVER');
    const attempt = one('gw-front', 'remote attempt');
    assert.equal(attempt.parentSpanId, root.spanId);
    assert.equal(attempt.kind, 3, 'CLIENT');
    assert.deepEqual([attempt.attributes['allocator_gateway.target'], attempt.attributes['allocator_gateway.endpoint'], attempt.attributes['allocator_gateway.outcome']], ['cluster-b', remote.address, 'allocated']);
    const remoteRoot = one('gw-remote', 'Allocate');
    assert.equal(remoteRoot.parentSpanId, attempt.spanId, 'the remote continues the trace under the attempt');
    const remotePick = one('gw-remote', 'local pick');
    assert.equal(remotePick.parentSpanId, remoteRoot.spanId);
    assert.equal(remotePick.attributes['allocator_gateway.outcome'], 'picked');
    const write = one('gw-remote', 'GameServer write');
    assert.equal(write.parentSpanId, remoteRoot.spanId);
    assert.match(String(write.attributes['allocator_gateway.game_server']), /^default\/remote-/);
    // Nothing of the front writes a GameServer (its local cluster is empty).
    assert.ok(!spans.some((s) => s.service === 'gw-front' && s.name === 'GameServer write'));
    assert.equal(spans.length, 6, JSON.stringify(spans.map((s) => [s.service, s.name])));
  });

  test('an idempotency key adds its claim span; a request without traceparent starts its own trace', async () => {
    const r = await restCall(`https://127.0.0.1:${front.restPort}/gameserverallocation`, {
      ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile), method: 'POST',
      headers: { 'idempotency-key': 'trace-key-1', 'x-request-id': 'traced-2' },
      body: JSON.stringify({ namespace: 'default', multiClusterSetting: { enabled: true } }),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const root = await until('the new root span', () => receiver.spans.find((s) => s.service === 'gw-front' && s.name === 'Allocate' && s.attributes['allocator_gateway.request_id'] === 'traced-2'));
    assert.equal(root.parentSpanId, '');
    const claim = await until('the claim span', () => receiver.spans.find((s) => s.traceId === root.traceId && s.service === 'gw-front' && s.name === 'idempotency claim'));
    assert.equal(claim.parentSpanId, root.spanId);
    // The forwarded key is claimed on the remote too, in the same trace.
    await until('the remote claim span', () => receiver.spans.find((s) => s.traceId === root.traceId && s.service === 'gw-remote' && s.name === 'idempotency claim'));
  });
});
