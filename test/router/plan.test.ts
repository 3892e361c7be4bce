// The route plan as case tables: tiers, weighted order under a scripted random source,
// misconfigurations kept and named; endpoints normalised as agones dials them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normaliseEndpoint, planRoute, seededRandom } from '../../src/router/plan.ts';
import { parsePolicy, selectPolicies, type AllocationPolicy } from '../../src/router/policy.ts';
import { Budget } from '../../src/router/budget.ts';
import { capacityVerdict, type NamespaceCapacity } from '../../src/router/capacity.ts';
import { finalError } from '../../src/router/policy-router.ts';

function p(name: string, priority: number, weight: number, endpoints: string[] | null = ['h:1']): AllocationPolicy {
  return { name, namespace: 'default', labels: {}, priority, weight, clusterName: name, allocationEndpoints: endpoints, secretName: 's', targetNamespace: 'default', serverCa: '' };
}

/** A random source that returns these values in turn. */
const scripted = (...values: number[]) => () => values.shift() ?? 0;

describe('planRoute: attempt order', () => {
  const cases: { name: string; policies: AllocationPolicy[]; random: number[]; expect: string[] }[] = [
    { name: 'ascending priority, whatever the listing order', policies: [p('c', 3, 1), p('a', 1, 1), p('b', 2, 1)], random: [], expect: ['a', 'b', 'c'] },
    { name: 'weighted: a low draw picks the first (by name) of the tier', policies: [p('eu', 1, 30), p('us', 1, 70)], random: [0.1, 0], expect: ['eu', 'us'] },
    { name: 'weighted: a draw past the first weight picks the second', policies: [p('eu', 1, 30), p('us', 1, 70)], random: [0.31, 0], expect: ['us', 'eu'] },
    { name: 'three in a tier, without replacement', policies: [p('a', 1, 1), p('b', 1, 1), p('c', 1, 2)], random: [0.99, 0.0, 0], expect: ['c', 'a', 'b'] },
    { name: 'weight 0 next to positive weights is never tried', policies: [p('off', 1, 0), p('on', 1, 5), p('later', 2, 1)], random: [0.5, 0.5], expect: ['on', 'later'] },
    { name: 'same clusterName in one tier: both stay (no collapse)', policies: [{ ...p('x1', 1, 1), clusterName: 'same' }, { ...p('x2', 1, 1), clusterName: 'same' }], random: [0, 0], expect: ['same', 'same'] },
    { name: 'an all-zero tier is kept and marked, the next tier follows', policies: [p('z1', 1, 0), p('z2', 1, 0), p('ok', 2, 1)], random: [0], expect: ['z1!', 'z2!', 'ok'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const plan = planRoute(c.policies, scripted(...c.random));
      assert.deepEqual(plan.targets.map((t) => t.name + (t.problem ? '!' : '')), c.expect);
    });
  }

  test('weights are honoured over many draws (70/30 ± 3 %)', () => {
    let us = 0;
    const rnd = seededRandom('weights');
    for (let i = 0; i < 10_000; i++) if (planRoute([p('eu', 1, 30), p('us', 1, 70)], rnd).targets[0]!.name === 'us') us++;
    assert.ok(us > 6_700 && us < 7_300, String(us));
  });

  test('a seeded order is the same on every replica', () => {
    const pol = [p('a', 1, 1), p('b', 1, 1), p('c', 1, 1), p('d', 1, 1)];
    const first = planRoute(pol, seededRandom('key-1')).targets.map((t) => t.name);
    for (let i = 0; i < 5; i++) assert.deepEqual(planRoute(pol, seededRandom('key-1')).targets.map((t) => t.name), first);
  });

  test('no endpoints = local; a bad endpoint names the policy', () => {
    const plan = planRoute([p('here', 1, 1, null), p('bad', 2, 1, ['ok:1', 'http://nope'])]);
    assert.equal(plan.targets[0]!.kind, 'local');
    assert.equal(plan.targets[0]!.name, 'here');
    assert.match(plan.targets[1]!.problem ?? '', /policy default\/bad: bad allocationEndpoints "http:\/\/nope"/);
  });
});

describe('normaliseEndpoint', () => {
  const cases: [string, string | null][] = [
    ['allocator.example.com', 'allocator.example.com:443'],
    ['10.0.0.1:8443', '10.0.0.1:8443'],
    ['[::1]', '[::1]:443'],
    ['[::1]:9', '[::1]:9'],
    ['h:0', null],
    ['h:70000', null],
    ['https://h', null],
    ['h/p', null],
    ['', null],
    ['a:b:c', null],
  ];
  for (const [raw, want] of cases) test(`${JSON.stringify(raw)} → ${want}`, () => assert.equal(normaliseEndpoint(raw), want));
});

describe('parsePolicy', () => {
  test('reads a GameServerAllocationPolicy (serverCa base64, as stored)', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const r = parsePolicy({
      apiVersion: 'multicluster.agones.dev/v1', kind: 'GameServerAllocationPolicy',
      metadata: { name: 'b', namespace: 'ns', labels: { tier: 'x' } },
      spec: { priority: 1, weight: 100, connectionInfo: { clusterName: 'cb', allocationEndpoints: ['h'], secretName: 's', namespace: 'remote', serverCa: Buffer.from(pem).toString('base64') } },
    });
    assert.ok(r.ok);
    assert.equal(r.policy.serverCa, pem);
    assert.equal(r.policy.targetNamespace, 'remote');
    assert.deepEqual(selectPolicies([r.policy], { tier: 'x' }).length, 1);
    assert.deepEqual(selectPolicies([r.policy], { tier: 'y' }).length, 0);
  });

  test('reports every problem by path', () => {
    const r = parsePolicy({ metadata: { name: 'bad', namespace: 'ns' }, spec: { priority: -1, connectionInfo: { allocationEndpoints: [], serverCa: 'bm90IHBlbQ==' } } });
    assert.ok(!r.ok);
    assert.deepEqual(r.problem.problems.map((x) => x.slice(0, x.indexOf(':'))), [
      'spec.priority', 'spec.weight', 'spec.connectionInfo.allocationEndpoints', 'spec.connectionInfo.namespace', 'spec.connectionInfo.serverCa',
    ]);
  });
});

describe('Budget', () => {
  test('attempts never outlive the caller and never start too short', () => {
    let now = 1_000;
    const b = new Budget(1_500, () => now);
    assert.equal(b.forAttempt(200), 1_200);
    assert.equal(b.forAttempt(10_000), 1_500);
    now = 1_490;
    assert.equal(b.forAttempt(200), null);
    assert.equal(b.remainingMs(), 10);
  });
});

describe('capacityVerdict', () => {
  const cap = (labelsComplete: boolean): NamespaceCapacity => ({
    total: { ready: 3, allocated: 1 },
    fleets: { red: { ready: 3, allocated: 0 }, blue: { ready: 0, allocated: 1 } },
    labels: new Map([['mode\u0000casual', { ready: 3, allocated: 0 }], ['agones.dev/fleet\u0000red', { ready: 3, allocated: 0 }]]),
    labelsComplete,
  });
  const sel = (matchLabels: Record<string, string>, gameServerState: 'Ready' | 'Allocated' = 'Ready') => ({ matchLabels, gameServerState, players: null, counters: {}, lists: {} });
  const cases: [string, Parameters<typeof capacityVerdict>[1], boolean, 'may-match' | 'no-match'][] = [
    ['any Ready', [sel({})], true, 'may-match'],
    ['a fleet with Ready', [sel({ 'agones.dev/fleet': 'red' })], true, 'may-match'],
    ['a fleet with only Allocated', [sel({ 'agones.dev/fleet': 'blue' })], true, 'no-match'],
    ['an unknown fleet, even with labels cut short', [sel({ 'agones.dev/fleet': 'green' })], false, 'no-match'],
    ['an unknown label pair', [sel({ mode: 'ranked' })], true, 'no-match'],
    ['an unknown label pair, labels cut short: cannot tell', [sel({ mode: 'ranked' })], false, 'may-match'],
    ['second selector matches', [sel({ mode: 'ranked' }), sel({ mode: 'casual' })], true, 'may-match'],
    ['Allocated selector', [sel({ 'agones.dev/fleet': 'blue' }, 'Allocated')], true, 'may-match'],
  ];
  for (const [name, selectors, complete, want] of cases) test(name, () => assert.equal(capacityVerdict(cap(complete), selectors), want));
});

describe('finalError', () => {
  const a = (outcome: string, code = '') => ({ target: 't', endpoint: 'e', outcome, code, message: 'm' });
  const cases: [string, ReturnType<typeof a>[], string][] = [
    ['all full', [a('no-capacity'), a('skipped-no-capacity')], 'NO_GAME_SERVER'],
    ['a rejection among full ones', [a('no-capacity'), a('rejected', '422')], 'REMOTE_REJECTED'],
    ['a failure among full ones', [a('no-capacity'), a('failed', 'UNAVAILABLE')], 'ALL_TARGETS_FAILED'],
    ['out of budget', [a('failed', 'UNAVAILABLE'), a('no-budget')], 'DEADLINE_EXCEEDED'],
    ['misconfigured only', [a('misconfigured')], 'ALL_TARGETS_FAILED'],
  ];
  for (const [name, attempts, reason] of cases) {
    test(`${name} → ${reason}`, () => {
      const e = finalError(attempts);
      assert.equal(e.reason, reason);
      assert.equal(e.attempts.length, attempts.length);
    });
  }
});
