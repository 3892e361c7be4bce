// The engine's view of a store's cache, indexed so a pick scans only plausible candidates:
// per namespace and state, by label, plus per-node counts for Packed ordering.
import { own } from '../allocation/records.ts';
import { GameServerMap } from '../allocation/game-server-map.ts';
import type { GameServer, SelectorState } from '../allocation/types.ts';
import type { StoreListener } from '../cluster/store.ts';
import type { NodeCounts } from './order.ts';

/** GameServers on one node, kept sorted by name so Packed's name order needs no sort per pick. */
export type NodeRun = readonly GameServer[];

/** Index of the first GameServer in the name-sorted run whose name is not below `name`. */
function lowerBound(run: readonly GameServer[], name: string): number {
  let lo = 0;
  let hi = run.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (run[mid]!.name < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(run: GameServer[], gs: GameServer): void {
  run.splice(lowerBound(run, gs.name), 0, gs);
}

function removeSorted(run: GameServer[], gs: GameServer): void {
  const at = lowerBound(run, gs.name);
  if (run[at]?.name === gs.name) run.splice(at, 1);
}

/** A set of GameServers split per node into name-sorted runs. */
class NodeRuns {
  readonly byNode = new Map<string, GameServer[]>();
  size = 0;

  add(gs: GameServer): void {
    let run = this.byNode.get(gs.nodeName);
    if (!run) this.byNode.set(gs.nodeName, (run = []));
    insertSorted(run, gs);
    this.size++;
  }

  delete(gs: GameServer): void {
    const run = this.byNode.get(gs.nodeName);
    if (!run) return;
    removeSorted(run, gs);
    this.size--;
    if (run.length === 0) this.byNode.delete(gs.nodeName);
  }
}

/**
 * GameServers of one namespace in one allocatable state, per node and per label pair, so a pick
 * visits only the nodes and label sets that can hold a match and walks them in name order.
 */
class Pool {
  readonly byName = new Map<string, GameServer>();
  readonly all = new NodeRuns();
  readonly #byLabel = new Map<string, NodeRuns>();

  add(gs: GameServer): void {
    this.byName.set(gs.name, gs);
    this.all.add(gs);
    for (const k in gs.labels) {
      const id = `${k}\u0000${gs.labels[k]}`;
      let runs = this.#byLabel.get(id);
      if (!runs) this.#byLabel.set(id, (runs = new NodeRuns()));
      runs.add(gs);
    }
  }

  delete(gs: GameServer): void {
    this.byName.delete(gs.name);
    this.all.delete(gs);
    for (const k in gs.labels) {
      const id = `${k}\u0000${gs.labels[k]}`;
      const runs = this.#byLabel.get(id);
      runs?.delete(gs);
      if (runs?.size === 0) this.#byLabel.delete(id);
    }
  }

  /** The smallest per-node set that holds every GameServer carrying these labels, or null if none can. */
  runs(matchLabels: Readonly<Record<string, string>>): NodeRuns | null {
    let best: NodeRuns | undefined;
    for (const k in matchLabels) {
      const runs = this.#byLabel.get(`${k}\u0000${matchLabels[k]}`);
      if (!runs) return null;
      if (!best || runs.size < best.size) best = runs;
    }
    return best ?? this.all;
  }

}

const EMPTY: ReadonlyMap<string, NodeRun> = new Map();

/** Keeps the engine's indexes in step with a ClusterStore (it is the store's listener). */
export class GameServerIndex implements StoreListener, NodeCounts {
  readonly #all = new GameServerMap<GameServer>();
  readonly #pools = new Map<string, Pool>();
  readonly #nodeAllocated = new Map<string, number>();
  readonly #nodeReady = new Map<string, number>();
  /** annotation → "namespace\0value" → name */
  readonly #byAnnotation = new Map<string, Map<string, string>>();

  /** @param indexedAnnotations annotation keys whose values are looked up (e.g. the idempotency key). */
  constructor(indexedAnnotations: readonly string[] = []) {
    for (const a of indexedAnnotations) this.#byAnnotation.set(a, new Map());
  }

  #pool(namespace: string, state: SelectorState): Pool {
    const id = `${namespace}\u0000${state}`;
    let p = this.#pools.get(id);
    if (!p) this.#pools.set(id, (p = new Pool()));
    return p;
  }

  #bump(gs: GameServer, by: 1 | -1): void {
    const counts = gs.state === 'Allocated' ? this.#nodeAllocated : gs.state === 'Ready' ? this.#nodeReady : null;
    if (!counts) return;
    // A GameServer being deleted still counts for its node, as in Agones' PerNodeCounter; it is never a candidate.
    const n = (counts.get(gs.nodeName) ?? 0) + by;
    if (n === 0) counts.delete(gs.nodeName);
    else counts.set(gs.nodeName, n);
    if (!gs.deleting) this.#pool(gs.namespace, gs.state as SelectorState)[by === 1 ? 'add' : 'delete'](gs);
  }

  #indexAnnotations(gs: GameServer, add: boolean): void {
    for (const [annotation, values] of this.#byAnnotation) {
      const v = own(gs.annotations, annotation);
      if (v === undefined) continue;
      const id = `${gs.namespace}\u0000${v}`;
      if (add) values.set(id, gs.name);
      else if (values.get(id) === gs.name) values.delete(id);
    }
  }

  upsert(gs: GameServer): void {
    const old = this.#all.get(gs.namespace, gs.name);
    if (old) {
      this.#bump(old, -1);
      this.#indexAnnotations(old, false);
    }
    this.#all.set(gs.namespace, gs.name, gs);
    this.#bump(gs, 1);
    this.#indexAnnotations(gs, true);
  }

  remove(namespace: string, name: string): void {
    const old = this.#all.get(namespace, name);
    if (!old) return;
    this.#bump(old, -1);
    this.#indexAnnotations(old, false);
    this.#all.delete(namespace, name);
  }

  reset(): void {
    this.#all.clear();
    this.#pools.clear();
    this.#nodeAllocated.clear();
    this.#nodeReady.clear();
    for (const m of this.#byAnnotation.values()) m.clear();
  }

  get(namespace: string, name: string): GameServer | undefined {
    return this.#all.get(namespace, name);
  }

  /** Candidates in a namespace and state that may carry every label in matchLabels, per node in name order. */
  runs(namespace: string, state: SelectorState, matchLabels: Readonly<Record<string, string>>): ReadonlyMap<string, NodeRun> {
    return this.#pools.get(`${namespace}\u0000${state}`)?.runs(matchLabels)?.byNode ?? EMPTY;
  }

  /** Every GameServer of a namespace in a state. */
  all(namespace: string, state: SelectorState): Iterable<GameServer> {
    return this.#pools.get(`${namespace}\u0000${state}`)?.byName.values() ?? [];
  }

  /** The GameServer whose indexed annotation has this value, in this namespace. */
  findByAnnotation(annotation: string, namespace: string, value: string): GameServer | undefined {
    const name = this.#byAnnotation.get(annotation)?.get(`${namespace}\u0000${value}`);
    return name === undefined ? undefined : this.#all.get(namespace, name);
  }

  /** Namespaces that hold at least one allocatable GameServer. */
  namespaces(): string[] {
    const out = new Set<string>();
    for (const [id, pool] of this.#pools) if (pool.byName.size > 0) out.add(id.slice(0, id.indexOf('\u0000')));
    return [...out];
  }

  allocatedOn(node: string): number {
    return this.#nodeAllocated.get(node) ?? 0;
  }

  readyOn(node: string): number {
    return this.#nodeReady.get(node) ?? 0;
  }

  get size(): number {
    return this.#all.size;
  }
}
