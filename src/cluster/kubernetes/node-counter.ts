// Ready and Allocated GameServers per node in every namespace of the cluster, deleting ones
// included, as Agones' PerNodeCounter (pkg/gameservers/pernodecounter.go) counts them to order
// Packed candidates. Fed by one cluster-wide list+watch that keeps only (node, state) per object.
import type { NodeCounts } from '../store.ts';
import type { GameServerObject } from './game-server-object.ts';
import type { ReflectorSink, WatchEventType } from './namespace-reflector.ts';

interface Placement {
  readonly key: string;
  readonly node: string;
  readonly state: string;
}

function placementOf(obj: GameServerObject): Placement {
  return { key: `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`, node: obj.status?.nodeName ?? '', state: obj.status?.state ?? '' };
}

export class NodeCounter implements NodeCounts, ReflectorSink<Placement> {
  readonly #placements = new Map<string, Placement>();
  readonly #ready = new Map<string, number>();
  readonly #allocated = new Map<string, number>();

  allocatedOn(node: string): number {
    return this.#allocated.get(node) ?? 0;
  }

  readyOn(node: string): number {
    return this.#ready.get(node) ?? 0;
  }

  prepare(obj: GameServerObject): Placement {
    return placementOf(obj);
  }

  discard(): void {}

  replace(_namespace: string, items: readonly Placement[]): void {
    this.#placements.clear();
    this.#ready.clear();
    this.#allocated.clear();
    for (const p of items) this.#set(p);
  }

  event(_namespace: string, type: WatchEventType, obj: GameServerObject): void {
    const p = placementOf(obj);
    if (type === 'DELETED') this.#unset(p.key);
    else this.#set(p);
  }

  #set(p: Placement): void {
    this.#unset(p.key);
    this.#placements.set(p.key, p);
    this.#bump(p, 1);
  }

  #unset(key: string): void {
    const old = this.#placements.get(key);
    if (old === undefined) return;
    this.#placements.delete(key);
    this.#bump(old, -1);
  }

  #bump(p: Placement, by: 1 | -1): void {
    const counts = p.state === 'Ready' ? this.#ready : p.state === 'Allocated' ? this.#allocated : null;
    if (counts === null) return;
    const n = (counts.get(p.node) ?? 0) + by;
    if (n === 0) counts.delete(p.node);
    else counts.set(p.node, n);
  }
}
