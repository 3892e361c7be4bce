// The embedded cluster: GameServers held in process memory, with the same optimistic
// concurrency contract as the Kubernetes store so the engine cannot tell them apart.
import { gameServerKey, type GameServer } from '../../allocation/types.ts';
import { StoreConflict, StoreNotFound, type ClusterStore, type StoreListener } from '../store.ts';

export class MemoryStore implements ClusterStore {
  readonly #objects = new Map<string, GameServer>();
  readonly #listeners = new Set<StoreListener>();
  #version = 0;

  constructor(initial: readonly GameServer[] = []) {
    for (const gs of initial) this.#put(gs);
  }

  #put(gs: GameServer): GameServer {
    const stored = Object.freeze({ ...gs, resourceVersion: String(++this.#version) });
    this.#objects.set(gameServerKey(stored), stored);
    for (const l of this.#listeners) l.upsert(stored);
    return stored;
  }

  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    for (const gs of this.#objects.values()) listener.upsert(gs);
    return () => this.#listeners.delete(listener);
  }

  get(namespace: string, name: string): GameServer | undefined {
    return this.#objects.get(`${namespace}/${name}`);
  }

  /** Every stored GameServer (for audits and tests). */
  list(): GameServer[] {
    return [...this.#objects.values()];
  }

  async update(next: GameServer, signal: AbortSignal): Promise<GameServer> {
    signal.throwIfAborted();
    const current = this.#objects.get(gameServerKey(next));
    if (!current) throw new StoreNotFound(`GameServer ${gameServerKey(next)} not found`);
    if (current.resourceVersion !== next.resourceVersion) {
      throw new StoreConflict(`GameServer ${gameServerKey(next)} changed (have ${current.resourceVersion}, wrote ${next.resourceVersion})`);
    }
    return this.#put(next);
  }

  /** Adds or replaces a GameServer regardless of version (seeding, tests, re-readying). */
  upsert(gs: GameServer): GameServer {
    return this.#put(gs);
  }

  /** Deletes a GameServer. */
  delete(namespace: string, name: string): void {
    if (this.#objects.delete(`${namespace}/${name}`)) for (const l of this.#listeners) l.remove(namespace, name);
  }

  readonly synced = true;

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
