// The load scenarios' ledger on hand-made cases: each kind of imbalance is counted and named, and
// a lost reply is forgiven only for a call whose own outcome was unknown.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idempotencyHash } from '../../src/router/idempotency.ts';
import { auditCalls, IDEMPOTENCY_ANNOTATION, LAST_ALLOCATED, type AuditedGameServer } from './ledger.ts';

const NS = 'default';
const ID = 'spiffe://test/client';
const gs = (name: string, state: string, key?: string, stamp = 't1'): [string, AuditedGameServer] =>
  [name, { name, state, annotations: state === 'Allocated' ? { [LAST_ALLOCATED]: stamp, ...(key ? { [IDEMPOTENCY_ANNOTATION]: idempotencyHash(NS, ID, key) } : {}) } : {} }];
const before = new Map([gs('a', 'Ready'), gs('b', 'Ready'), gs('c', 'Ready'), gs('d', 'Ready')]);
const audit = (after: Map<string, AuditedGameServer>, calls: Parameters<typeof auditCalls>[0]['calls']) => auditCalls({ calls, namespace: NS, identity: ID, before, after });

test('balanced: every told name Allocated by its own call, nothing else allocated', () => {
  const l = audit(new Map([gs('a', 'Allocated', 'k1'), gs('b', 'Allocated', 'k2'), gs('c', 'Ready'), gs('d', 'Ready')]), [
    { key: 'k1', name: 'a', outcome: 'told' }, { key: 'k2', name: 'b', outcome: 'told' }, { key: 'k3', outcome: 'refused' },
  ]);
  assert.deepEqual([l.problems, l.doubles, l.lost, l.reclaimable], [[], 0, 0, 0]);
});

test('told twice, told but not Allocated, and Allocated but untold are each counted', () => {
  const l = audit(new Map([gs('a', 'Allocated', 'k1'), gs('b', 'Ready'), gs('c', 'Allocated', 'k9'), gs('d', 'Ready')]), [
    { key: 'k1', name: 'a', outcome: 'told' }, { key: 'k2', name: 'a', outcome: 'told' }, { key: 'k3', name: 'b', outcome: 'told' },
  ]);
  assert.ok(l.doubles >= 1, 'told twice');
  assert.equal(l.toldNotAllocated, 1);
  assert.equal(l.allocatedUntold, 1);
  assert.equal(l.problems.length >= 3, true, l.problems.join('\n'));
});

test('an untold allocation is forgiven only for a call whose own outcome was unknown, once', () => {
  const after = new Map([gs('a', 'Allocated', 'k1'), gs('b', 'Allocated', 'k2'), gs('c', 'Ready'), gs('d', 'Ready')]);
  const unknown = audit(after, [{ key: 'k1', name: 'a', outcome: 'told' }, { key: 'k2', outcome: 'unknown' }]);
  assert.deepEqual([unknown.problems, unknown.lost, unknown.reclaimable], [[], 0, 1]);
  const refused = audit(after, [{ key: 'k1', name: 'a', outcome: 'told' }, { key: 'k2', outcome: 'refused' }]);
  assert.equal(refused.lost, 1, 'a refused call cannot explain an allocation');
});

test('re-readied GameServers: an allocation is a name and its stamp', () => {
  const events = [{ name: 'a', stamp: 't1', key: idempotencyHash(NS, ID, 'k1') }, { name: 'a', stamp: 't2', key: idempotencyHash(NS, ID, 'k2') }];
  const ok = auditCalls({ calls: [{ key: 'k1', name: 'a', allocatedAt: 't1', outcome: 'told' }, { key: 'k2', name: 'a', allocatedAt: 't2', outcome: 'told' }], namespace: NS, identity: ID, events });
  assert.deepEqual([ok.problems, ok.doubles, ok.lost], [[], 0, 0]);
  const twice = auditCalls({ calls: [{ key: 'k1', name: 'a', allocatedAt: 't1', outcome: 'told' }, { key: 'k2', name: 'a', allocatedAt: 't1', outcome: 'told' }], namespace: NS, identity: ID, events });
  assert.ok(twice.doubles >= 1 && twice.lost >= 1, twice.problems.join('\n'));
});
