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

test('an endpoint judged too slow is probed again once its newest sample is stale, once per interval', () => {
  let now = 0;
  const l = new EndpointLatency({ probeIntervalMs: 5_000, now: () => now });
  l.observe('e', 2_000);
  assert.equal(l.mayProbe('e'), false, 'a fresh estimate is trusted');
  now = 5_001;
  assert.equal(l.mayProbe('e'), true, 'a stale estimate gets one probe');
  assert.equal(l.mayProbe('e'), false, 'and only one per interval');
  now = 10_002;
  assert.equal(l.mayProbe('e'), true);
  l.observe('e', 30);
  assert.equal(l.expectedMs('e'), 2_000, 'the probe answer joins the window');
});
