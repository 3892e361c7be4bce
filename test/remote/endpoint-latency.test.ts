// The moving quantile that keeps attempts from starting when they would outlive the deadline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointLatency } from '../../src/remote/endpoint-latency.ts';

test('expected latency: the 90th percentile of recent samples, forgotten when old, bounded in endpoints', () => {
  let now = 0;
  const l = new EndpointLatency({ window: 10, maxAgeMs: 1_000, maxEndpoints: 2, now: () => now });
  assert.equal(l.expectedMs('a'), null);
  for (const ms of [10, 20, 30, 40, 50, 60, 70, 80, 90, 500]) l.observe('a', ms);
  assert.equal(l.expectedMs('a'), 90);
  l.observe('a', 600); // the window slides: 10 drops out
  assert.equal(l.expectedMs('a'), 500);
  now = 2_000;
  assert.equal(l.expectedMs('a'), null, 'old samples are forgotten');
  l.observe('a', 5);
  l.observe('b', 5);
  l.observe('c', 5);
  assert.equal(l.expectedMs('a'), null, 'least recently used endpoint dropped');
  assert.equal(l.expectedMs('c'), 5);
});
