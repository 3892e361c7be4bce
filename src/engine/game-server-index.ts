// The engine's view of a store's cache, indexed so a pick scans only plausible candidates:
// per namespace and state, by label, plus per-node counts for Packed ordering.
import { gameServerKey, type GameServer, type SelectorState } from '../allocation/types.ts';
import type { StoreListener } from '../cluster/store.ts';
import type { NodeCounts } from './order.ts';

/** GameServers of one namespace in one allocatable state. */
class Pool {
  readonly byName = new Map<string, GameServer>();
  readonly #byLabel = new Map<string, Set<GameServer>>();

  add(gs: GameServer): void {
    this.byName.set(gs.name, gs);
    for (const k in gs.labels) {
      const id = `${k}\u0000${gs.labels[k]}`;
      let set = this.#byLabel.get(id);
      if (!set) this.#byLabel.set(id, (set = new Set()));
      set.add(gs);
    }
  }

  delete(gs: GameServer): void {
    this.byName.delete(gs.name);
    for (const k in gs.labels) {
      const id = `${k}\u0000${gs.labels[k]}`;
      const set = this.#byLabel.get(id);
      set?.delete(gs);
      if (set?.size === 0) this.#byLabel.delete(id);
    }
  }

  /** The smallest candidate set that can hold every match for these labels. */
  candidates(matchLabels: Readonly<Record<string, string>>): Iterable<GameServer> {
    let best: Set<GameServer> | undefined;
    for (const k in matchLabels) {
      const set = this.#byLabel.get(`${k}\u0000${matchLabels[k]}`);
      if (!set) return [];
      if (!best || set.size < best.size) best = set;
    }
    return best ?? this.byName.values();
  }
}

/** Counts of allocatable GameServers, as advertised to other gateways. */
export interface PoolCounts {
  readonly ready: number;
  readonly allocated: number;
}

/** Keeps the engine's indexes in step with a ClusterStore (it is the store's listener). */
export class GameServerIndex implements StoreListener, NodeCounts {
  readonly #all = new Map<string, GameServer>();
  readonly #pools = new Map<string, Pool>();
  readonly #nodeAllocated = new Map<string, number>();
  readonly #nodeReady = new Map<string, number>();
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
    if (gs.deleting) return;
    const counts = gs.state === 'Allocated' ? this.#nodeAllocated : gs.state === 'Ready' ? this.#nodeReady : null;
    if (!counts) return;
    const n = (counts.get(gs.nodeName) ?? 0) + by;
    if (n === 0) counts.delete(gs.nodeName);
    else counts.set(gs.nodeName, n);
    this.#pool(gs.namespace, gs.state as SelectorState)[by === 1 ? 'add' : 'delete'](gs);
  }

  #indexAnnotations(gs: GameServer, key: string, add: boolean): void {
    for (const [annotation, values] of this.#byAnnotation) {
      const v = gs.annotations[annotation];
      if (v === undefined) continue;
      const id = `${gs.namespace}\u0000${v}`;
      if (add) values.set(id, key);
      else if (values.get(id) === key) values.delete(id);
    }
  }

  upsert(gs: GameServer): void {
    const key = gameServerKey(gs);
    const old = this.#all.get(key);
    if (old) {
      this.#bump(old, -1);
      this.#indexAnnotations(old, key, false);
    }
    this.#all.set(key, gs);
    this.#bump(gs, 1);
    this.#indexAnnotations(gs, key, true);
  }

  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.#all.get(key);
    if (!old) return;
    this.#bump(old, -1);
    this.#indexAnnotations(old, key, false);
    this.#all.delete(key);
  }

  reset(): void {
    this.#all.clear();
    this.#pools.clear();
    this.#nodeAllocated.clear();
    this.#nodeReady.clear();
    for (const m of this.#byAnnotation.values()) m.clear();
  }

  get(namespace: string, name: string): GameServer | undefined {
    return this.#all.get(`${namespace}/${name}`);
  }

  /** Candidates in a namespace and state that carry every label in matchLabels. */
  candidates(namespace: string, state: SelectorState, matchLabels: Readonly<Record<string, string>>): Iterable<GameServer> {
    return this.#pools.get(`${namespace}\u0000${state}`)?.candidates(matchLabels) ?? [];
  }

  /** The GameServer whose indexed annotation has this value, in this namespace. */
  findByAnnotation(annotation: string, namespace: string, value: string): GameServer | undefined {
    const key = this.#byAnnotation.get(annotation)?.get(`${namespace}\u0000${value}`);
    return key === undefined ? undefined : this.#all.get(key);
  }

  /** Ready/Allocated counts in a namespace, optionally only those with these labels. */
  counts(namespace: string, matchLabels: Readonly<Record<string, string>> = {}): PoolCounts {
    const size = (state: SelectorState): number => {
      let n = 0;
      for (const gs of this.candidates(namespace, state, matchLabels)) {
        let ok = true;
        for (const k in matchLabels) if (gs.labels[k] !== matchLabels[k]) ok = false;
        if (ok) n++;
      }
      return n;
    };
    return { ready: size('Ready'), allocated: size('Allocated') };
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
