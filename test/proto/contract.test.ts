// The wire contract: buf lint, and the field numbers Agones' clients depend on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { protoRoot } from '../../src/protocol/proto.ts';

test('buf lint passes', () => {
  const root = new URL('../..', import.meta.url).pathname;
  const r = spawnSync('npx', ['--no-install', 'buf', 'lint'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

// Facts of Agones' allocation.proto (v1.56): message → field → number.
const AGONES_FIELDS: Record<string, Record<string, number>> = {
  AllocationRequest: { namespace: 1, multiClusterSetting: 2, requiredGameServerSelector: 3, preferredGameServerSelectors: 4, scheduling: 5, metaPatch: 6, metadata: 7, gameServerSelectors: 8, priorities: 9, counters: 10, lists: 11 },
  AllocationResponse: { gameServerName: 2, ports: 3, address: 4, nodeName: 5, source: 6, metadata: 7, addresses: 8, counters: 9, lists: 10 },
  'AllocationResponse.GameServerStatusPort': { name: 1, port: 2 },
  'AllocationResponse.GameServerStatusAddress': { type: 1, address: 2 },
  'AllocationResponse.GameServerMetadata': { labels: 1, annotations: 2 },
  'AllocationResponse.CounterStatus': { count: 1, capacity: 2 },
  'AllocationResponse.ListStatus': { values: 1, capacity: 2 },
  MultiClusterSetting: { enabled: 1, policySelector: 2 },
  MetaPatch: { labels: 1, annotations: 2 },
  LabelSelector: { matchLabels: 1 },
  GameServerSelector: { matchLabels: 1, gameServerState: 2, players: 3, counters: 4, lists: 5 },
  PlayerSelector: { minAvailable: 1, maxAvailable: 2 },
  CounterSelector: { minCount: 1, maxCount: 2, minAvailable: 3, maxAvailable: 4 },
  ListSelector: { containsValue: 1, minAvailable: 2, maxAvailable: 3 },
  Priority: { type: 1, key: 2, order: 3 },
  CounterAction: { action: 1, amount: 2, capacity: 3 },
  ListAction: { addValues: 1, capacity: 2, deleteValues: 3 },
};
const AGONES_ENUMS: Record<string, Record<string, number>> = {
  'AllocationRequest.SchedulingStrategy': { Packed: 0, Distributed: 1 },
  'GameServerSelector.GameServerState': { READY: 0, ALLOCATED: 1 },
  'Priority.Type': { Counter: 0, List: 1 },
  'Priority.Order': { Ascending: 0, Descending: 1 },
};

test('every Agones message, field name and number is present and identical', () => {
  for (const [message, fields] of Object.entries(AGONES_FIELDS)) {
    const type = protoRoot.lookupType(`allocation.${message}`);
    const ours = Object.fromEntries(type.fieldsArray.map((f) => [f.name, f.id]));
    assert.deepEqual(ours, fields, message);
  }
  for (const [name, values] of Object.entries(AGONES_ENUMS)) {
    assert.deepEqual({ ...protoRoot.lookupEnum(`allocation.${name}`).values }, values, name);
  }
  assert.ok(protoRoot.lookupService('allocation.AllocationService').methods.Allocate);
});
