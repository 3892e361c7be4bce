// Fleet file: a YAML description of nodes, fleets and single GameServers that seeds the
// embedded cluster. Fleets expand into `replicas` GameServers spread round-robin over nodes.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { recordOf } from '../../allocation/records.ts';
import type { GameServer } from '../../allocation/types.ts';

const isMapping = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A mapping keyed by any string: zod's record drops "__proto__", a counter name Agones accepts. */
const record = <V extends z.ZodType>(value: V) =>
  z
    .preprocess((v) => (isMapping(v) ? new Map(Object.entries(v)) : v), z.map(z.string(), value, { error: 'expected a mapping' }))
    .transform((m) => recordOf(m));

const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Labels = record(z.string()).default({});
const Counter = z.strictObject({ count: Count.default(0), capacity: Count });
const List = z.strictObject({ capacity: Count.max(1000), values: z.array(z.string()).default([]) });
const Address = z.strictObject({ type: z.string(), address: z.string() });
const State = z.enum(['Ready', 'Allocated', 'Reserved', 'Scheduled', 'Shutdown']);

const Node = z.strictObject({ name: z.string().min(1), addresses: z.array(Address).min(1) });

const Fleet = z.strictObject({
  name: z.string().min(1),
  namespace: z.string().default('default'),
  replicas: z.number().int().min(0).max(1_000_000),
  state: State.default('Ready'),
  labels: Labels,
  annotations: Labels,
  ports: z.array(z.strictObject({ name: z.string(), basePort: z.number().int().min(1).max(65_535) })).default([]),
  counters: record(Counter).default({}),
  lists: record(List).default({}),
  players: z.strictObject({ count: Count.default(0), capacity: Count }).optional(),
  /** Restrict to these nodes; default all. */
  nodes: z.array(z.string()).optional(),
});

const Single = z.strictObject({
  name: z.string().min(1),
  namespace: z.string().default('default'),
  state: State.default('Ready'),
  nodeName: z.string(),
  labels: Labels,
  annotations: Labels,
  ports: z.array(z.strictObject({ name: z.string(), port: z.number().int().min(1).max(65_535) })).default([]),
  counters: record(Counter).default({}),
  lists: record(List).default({}),
  players: z.strictObject({ count: Count.default(0), capacity: Count }).optional(),
});

export const FleetFileSchema = z.strictObject({
  nodes: z.array(Node).min(1),
  fleets: z.array(Fleet).default([]),
  gameServers: z.array(Single).default([]),
});

export type FleetFile = z.infer<typeof FleetFileSchema>;

/** Thrown for an unreadable or invalid fleet file; lists every problem by path. */
export class FleetFileError extends Error {
  override readonly name = 'FleetFileError';
}

/** Expands a parsed fleet file into GameServers. */
export function expandFleetFile(file: FleetFile): GameServer[] {
  const nodes = new Map(file.nodes.map((n) => [n.name, n]));
  const out: GameServer[] = [];
  const base = (nodeName: string) => {
    const node = nodes.get(nodeName);
    if (!node) throw new FleetFileError(`unknown node ${JSON.stringify(nodeName)}`);
    return { address: node.addresses[0]?.address ?? '', addresses: node.addresses, nodeName };
  };
  for (const f of file.fleets) {
    const onNodes = f.nodes ?? [...nodes.keys()];
    for (let i = 0; i < f.replicas; i++) {
      const nodeName = onNodes[i % onNodes.length]!;
      out.push({
        namespace: f.namespace,
        name: `${f.name}-${String(i).padStart(Math.max(3, String(f.replicas - 1).length), '0')}`,
        resourceVersion: '0',
        labels: { ...f.labels, 'agones.dev/fleet': f.name },
        annotations: { ...f.annotations },
        state: f.state,
        ...base(nodeName),
        ports: f.ports.map((p) => ({ name: p.name, port: p.basePort + i })),
        counters: structuredClone(f.counters),
        lists: structuredClone(f.lists),
        players: f.players ?? null,
        deleting: false,
      });
    }
  }
  for (const g of file.gameServers) {
    out.push({
      namespace: g.namespace,
      name: g.name,
      resourceVersion: '0',
      labels: g.labels,
      annotations: g.annotations,
      state: g.state,
      ...base(g.nodeName),
      ports: g.ports,
      counters: g.counters,
      lists: g.lists,
      players: g.players ?? null,
      deleting: false,
    });
  }
  const seen = new Set<string>();
  for (const gs of out) {
    const key = `${gs.namespace}/${gs.name}`;
    if (seen.has(key)) throw new FleetFileError(`duplicate GameServer ${key}`);
    seen.add(key);
  }
  return out;
}

/** Parses fleet-file data (already loaded from YAML) into GameServers. */
export function parseFleetFile(raw: unknown): GameServer[] {
  const r = FleetFileSchema.safeParse(raw);
  if (!r.success) {
    throw new FleetFileError(r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('\n'));
  }
  return expandFleetFile(r.data);
}

/** Reads and parses a fleet file. */
export async function loadFleetFile(path: string): Promise<GameServer[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FleetFileError(`cannot read fleet file ${path}: ${(err as Error).message}`);
  }
  try {
    return parseFleetFile(parse(text));
  } catch (err) {
    throw new FleetFileError(`fleet file ${path}: ${(err as Error).message}`);
  }
}
