// Bad input that carries huge keys or values gets INVALID_ARGUMENT with a bounded message on both
// doors: echoing it back whole made gRPC status trailers too large (the caller saw INTERNAL) and
// REST error bodies megabytes long.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AllocatorError } from '../../src/client/index.ts';
import { devCerts } from '../helpers/certs.ts';
import { caught, startGateway } from '../helpers/gateway.ts';

const MAX_MESSAGE = 4_096;

test('invalid requests with huge keys or values: INVALID_ARGUMENT / 400 with a message of at most 4 KB', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs });
  const requests: Record<string, unknown>[] = [
    { namespace: 'default', metadata: { labels: { a: 'x'.repeat(100_000) } } },
    { namespace: 'default', metadata: { labels: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'y'.repeat(10_000)])) } },
    { namespace: 'default', metadata: { annotations: { [`${'p'.repeat(100_000)}/x`]: 'v' } } },
    { namespace: 'default', gameServerSelectors: [{ matchLabels: { a: 'z'.repeat(200_000) } }] },
    { namespace: 'n'.repeat(300_000) },
    { namespace: 'default', counters: { c: { action: 'x'.repeat(100_000) } } },
  ];
  // proto-loader's gRPC form of a google.protobuf.StringValue is { value }.
  const grpcForm = (req: Record<string, unknown>, i: number) => (i === 5 ? { namespace: 'default', counters: { c: { action: { value: 'x'.repeat(100_000) } } } } : req);
  for (const [i, req] of requests.entries()) {
    const err = await caught<AllocatorError>(gw.client().allocate(grpcForm(req, i), { deadline: 10_000 }));
    assert.equal(err.codeName, 'INVALID_ARGUMENT', `request ${i} over gRPC: ${err.codeName} ${err.details.slice(0, 200)}`);
    assert.ok(err.details.length <= MAX_MESSAGE, `request ${i}: gRPC message of ${err.details.length} characters`);
    const rest = await gw.rest(req);
    assert.equal(rest.status, 400, `request ${i} over REST`);
    assert.ok(rest.body.message.length <= MAX_MESSAGE, `request ${i}: REST message of ${rest.body.message.length} characters`);
    assert.ok(JSON.stringify(rest.body).length <= 2 * MAX_MESSAGE, `request ${i}: REST body of ${JSON.stringify(rest.body).length} bytes`);
  }
  // A JSON value of the wrong type is echoed cut short too.
  const wrongType = await gw.rest({ namespace: 'default', scheduling: 'q'.repeat(100_000) });
  assert.equal(wrongType.status, 400);
  assert.ok(wrongType.body.message.length <= MAX_MESSAGE);
});
