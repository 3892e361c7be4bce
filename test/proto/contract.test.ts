// The wire contract: buf lint, Agones' field numbers and types, and every codec the gateway runs
// (proto-loader for gRPC, protobufjs reflection for REST, the bytes they write) checked against
// the .proto files as parsed from their text here, not against a copy typed into the test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import type * as protoLoader from '@grpc/proto-loader';
import { ALLOCATION_PROTO, allocateMethod, packageDefinition, PROTO_DIR, protoRoot } from '../../src/protocol/proto.ts';
import { GATEWAY_PROTO, gatewayPackageDefinition } from '../../src/remote/gateway-proto.ts';

test('buf lint passes', () => {
  const root = new URL('../..', import.meta.url).pathname;
  const r = spawnSync('npx', ['--no-install', 'buf', 'lint'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

/** A field as the .proto text declares it: `8 repeated GameServerSelector`, `10 map<string,CounterAction>`. */
type Declared = Record<string, Record<string, string>>;

/** Messages and enums of a .proto file, parsed from its text (nothing else of the project involved). */
function parseFile(relative: string): { messages: Declared; enums: Record<string, Record<string, number>>; pkg: string } {
  const parsed = protobuf.parse(readFileSync(join(PROTO_DIR, relative), 'utf8'), { keepCase: true });
  const messages: Declared = {};
  const enums: Record<string, Record<string, number>> = {};
  const walk = (ns: protobuf.NamespaceBase, prefix: string): void => {
    for (const child of ns.nestedArray) {
      const name = prefix ? `${prefix}.${child.name}` : child.name;
      if (child instanceof protobuf.Type) {
        messages[name] = Object.fromEntries(child.fieldsArray.map((f) => [f.name, declared(f)]));
        walk(child, name);
      } else if (child instanceof protobuf.Enum) enums[name] = { ...child.values };
      else if (child instanceof protobuf.Namespace && !(child instanceof protobuf.Service)) walk(child, name);
    }
  };
  walk(parsed.root.lookup(parsed.package!) as protobuf.Namespace, '');
  return { messages, enums, pkg: parsed.package! };
}

function declared(f: protobuf.Field): string {
  if (f instanceof protobuf.MapField) return `${f.id} map<${f.keyType},${f.type}>`;
  return `${f.id} ${f.repeated ? 'repeated ' : ''}${f.type}`;
}

// Facts of Agones' allocation.proto (v1.56): message → field → number and type. (Agones' file
// itself cannot be shipped here; its facts can.)
const AGONES: Declared = {
  AllocationRequest: {
    namespace: '1 string', multiClusterSetting: '2 MultiClusterSetting', requiredGameServerSelector: '3 GameServerSelector',
    preferredGameServerSelectors: '4 repeated GameServerSelector', scheduling: '5 SchedulingStrategy', metaPatch: '6 MetaPatch', metadata: '7 MetaPatch',
    gameServerSelectors: '8 repeated GameServerSelector', priorities: '9 repeated Priority', counters: '10 map<string,CounterAction>', lists: '11 map<string,ListAction>',
  },
  AllocationResponse: {
    gameServerName: '2 string', ports: '3 repeated GameServerStatusPort', address: '4 string', nodeName: '5 string', source: '6 string',
    metadata: '7 GameServerMetadata', addresses: '8 repeated GameServerStatusAddress', counters: '9 map<string,CounterStatus>', lists: '10 map<string,ListStatus>',
  },
  'AllocationResponse.GameServerStatusPort': { name: '1 string', port: '2 int32' },
  'AllocationResponse.GameServerStatusAddress': { type: '1 string', address: '2 string' },
  'AllocationResponse.GameServerMetadata': { labels: '1 map<string,string>', annotations: '2 map<string,string>' },
  'AllocationResponse.CounterStatus': { count: '1 google.protobuf.Int64Value', capacity: '2 google.protobuf.Int64Value' },
  'AllocationResponse.ListStatus': { values: '1 repeated string', capacity: '2 google.protobuf.Int64Value' },
  MultiClusterSetting: { enabled: '1 bool', policySelector: '2 LabelSelector' },
  MetaPatch: { labels: '1 map<string,string>', annotations: '2 map<string,string>' },
  LabelSelector: { matchLabels: '1 map<string,string>' },
  GameServerSelector: { matchLabels: '1 map<string,string>', gameServerState: '2 GameServerState', players: '3 PlayerSelector', counters: '4 map<string,CounterSelector>', lists: '5 map<string,ListSelector>' },
  PlayerSelector: { minAvailable: '1 uint64', maxAvailable: '2 uint64' },
  CounterSelector: { minCount: '1 int64', maxCount: '2 int64', minAvailable: '3 int64', maxAvailable: '4 int64' },
  ListSelector: { containsValue: '1 string', minAvailable: '2 int64', maxAvailable: '3 int64' },
  Priority: { type: '1 Type', key: '2 string', order: '3 Order' },
  CounterAction: { action: '1 google.protobuf.StringValue', amount: '2 google.protobuf.Int64Value', capacity: '3 google.protobuf.Int64Value' },
  ListAction: { addValues: '1 repeated string', capacity: '2 google.protobuf.Int64Value', deleteValues: '3 repeated string' },
};
const AGONES_ENUMS: Record<string, Record<string, number>> = {
  'AllocationRequest.SchedulingStrategy': { Packed: 0, Distributed: 1 },
  'GameServerSelector.GameServerState': { READY: 0, ALLOCATED: 1 },
  'Priority.Type': { Counter: 0, List: 1 },
  'Priority.Order': { Ascending: 0, Descending: 1 },
};

const allocationFile = parseFile(ALLOCATION_PROTO);

test('allocation.proto declares every Agones message, field, number and type, and nothing else', () => {
  assert.equal(allocationFile.pkg, 'allocation');
  assert.deepEqual(allocationFile.messages, AGONES);
  assert.deepEqual(allocationFile.enums, AGONES_ENUMS);
});

/** A field as a proto-loader descriptor (what grpc-js serializes with) holds it, in the declared form. */
function fromDescriptor(d: { field: { name: string; number: number; label: string; type: string; typeName: string }[]; nestedType?: { name: string; options?: { mapEntry?: boolean }; field: { type: string; typeName: string }[] }[] }, pkg: string): Record<string, string> {
  const scalar = (type: string, typeName: string): string => (type === 'TYPE_MESSAGE' || type === 'TYPE_ENUM' ? typeName.replace(/^\.?/, '').replace(`${pkg}.`, '') : type.slice(5).toLowerCase());
  return Object.fromEntries(d.field.map((f) => {
    const entry = d.nestedType?.find((n) => n.options?.mapEntry && (f.typeName === n.name || f.typeName.endsWith(`.${n.name}`)));
    if (entry) {
      const [k, v] = entry.field as [{ type: string; typeName: string }, { type: string; typeName: string }];
      return [f.name, `${f.number} map<${scalar(k.type, k.typeName)},${scalar(v.type, v.typeName)}>`];
    }
    return [f.name, `${f.number} ${f.label === 'LABEL_REPEATED' ? 'repeated ' : ''}${scalar(f.type, f.typeName)}`];
  }));
}

/** Names in a descriptor are fully qualified; the file's are relative to where they are used. */
function relative(declaredHere: Record<string, string>, message: string): Record<string, string> {
  const scopes = message.split('.').map((_, i, all) => all.slice(0, all.length - i).join('.'));
  const strip = (t: string) => scopes.reduce((x, s) => (x.startsWith(`${s}.`) ? x.slice(s.length + 1) : x), t);
  return Object.fromEntries(Object.entries(declaredHere).map(([n, s]) => [n, s.replace(/(map<\w+,)([\w.]+)>$|^(\d+ (?:repeated )?)([\w.]+)$/, (_m, a, b, c, d) => (a ? `${a}${strip(b)}>` : `${c}${strip(d)}`))]));
}

for (const [file, definition] of [[ALLOCATION_PROTO, packageDefinition], [GATEWAY_PROTO, gatewayPackageDefinition]] as const) {
  test(`the gRPC codec (proto-loader) of ${file} has the file's field numbers and types`, () => {
    const parsed = parseFile(file);
    for (const [message, fields] of Object.entries(parsed.messages)) {
      // Nested messages live inside their parent's descriptor.
      const [top, ...inner] = message.split('.');
      let type = (definition[`${parsed.pkg}.${top}`] as protoLoader.MessageTypeDefinition<object, object> | undefined)?.type as { name: string; nestedType?: unknown[] } | undefined;
      for (const n of inner) type = (type?.nestedType as { name: string }[] | undefined)?.find((x) => x.name === n);
      assert.ok(type, `${message} missing from the loaded definition`);
      assert.deepEqual(relative(fromDescriptor(type as never, parsed.pkg), message), fields, message);
    }
  });
}

test('the REST codec (protobufjs reflection) has the file\'s field numbers and types', () => {
  for (const [message, fields] of Object.entries(allocationFile.messages)) {
    const type = protoRoot.lookupType(`allocation.${message}`);
    assert.deepEqual(Object.fromEntries(type.fieldsArray.map((f) => [f.name, declared(f)])), fields, message);
  }
  for (const [name, values] of Object.entries(allocationFile.enums)) assert.deepEqual({ ...protoRoot.lookupEnum(`allocation.${name}`).values }, values, name);
  assert.ok(protoRoot.lookupService('allocation.AllocationService').methods.Allocate);
});

/** Wire type a field of the declared form must be written with (packed repeated scalars aside). */
function wireType(decl: string): number {
  const t = decl.replace(/^\d+ (repeated )?/, '');
  if (t.startsWith('map<') || /^(string|bytes)$/.test(t) || /^[A-Z]|\./.test(t) && !/^(SchedulingStrategy|GameServerState|Type|Order)$/.test(t)) return 2;
  return 0;
}

/** Walks bytes tag by tag: every field number is one the file declares, written with its type's wire type. */
function walk(bytes: Uint8Array, message: string, seen: Set<string>): void {
  const fields = allocationFile.messages[message]!;
  const byId = new Map(Object.entries(fields).map(([n, d]) => [Number(d.split(' ')[0]), [n, d] as const]));
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const f = byId.get(tag >>> 3);
    assert.ok(f, `${message}: field number ${tag >>> 3} is not in the file`);
    const [name, decl] = f;
    assert.equal(tag & 7, wireType(decl), `${message}.${name} (${decl}) written with wire type ${tag & 7}`);
    seen.add(`${message}.${name}`);
    if ((tag & 7) !== 2) {
      r.skipType(tag & 7);
      continue;
    }
    const sub = r.bytes();
    const t = decl.replace(/^\d+ (repeated )?/, '');
    const nested = [`${message}.${t}`, t].find((n) => allocationFile.messages[n]);
    if (nested) walk(sub, nested, seen);
  }
}

test('the bytes the gRPC door writes carry the file\'s field numbers and wire types', () => {
  const response = {
    gameServerName: 'gs-1', ports: [{ name: 'default', port: 7000 }], address: '10.0.0.1', addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
    nodeName: 'node-1', source: 'local', metadata: { labels: { a: 'b' }, annotations: { c: 'd' } },
    counters: { rooms: { count: { value: '1' }, capacity: { value: '4' } } }, lists: { players: { values: ['p1'], capacity: { value: '3' } } },
  };
  const seen = new Set<string>();
  walk(allocateMethod.responseSerialize(response as never), 'AllocationResponse', seen);
  for (const name of Object.keys(allocationFile.messages.AllocationResponse!)) assert.ok(seen.has(`AllocationResponse.${name}`), `AllocationResponse.${name} not written`);
  const request = {
    namespace: 'default', multiClusterSetting: { enabled: true, policySelector: { matchLabels: { a: 'b' } } }, scheduling: 'Distributed',
    metadata: { labels: { a: 'b' } }, gameServerSelectors: [{ matchLabels: { a: 'b' }, gameServerState: 'ALLOCATED', players: { minAvailable: '1' }, counters: { rooms: { minCount: '1' } }, lists: { l: { containsValue: 'x' } } }],
    priorities: [{ type: 'List', key: 'rooms', order: 'Descending' }], counters: { rooms: { action: { value: 'Increment' }, amount: { value: '1' } } }, lists: { l: { addValues: ['x'] } },
  };
  walk(allocateMethod.requestSerialize(request as never), 'AllocationRequest', seen);
  for (const name of ['namespace', 'multiClusterSetting', 'scheduling', 'metadata', 'gameServerSelectors', 'priorities', 'counters', 'lists']) assert.ok(seen.has(`AllocationRequest.${name}`), `AllocationRequest.${name} not written`);
});
