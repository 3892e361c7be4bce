// GameServers by namespace, then name. A cache of 100,000s pays for every key it makes: one map
// per namespace keys on the name the GameServer already holds, where a "namespace/name" key
// would be a second string per entry, in every map that holds them.

export class GameServerMap<V> {
  readonly #byNamespace = new Map<string, Map<string, V>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(namespace: string, name: string): V | undefined {
    return this.#byNamespace.get(namespace)?.get(name);
  }

  set(namespace: string, name: string, value: V): void {
    let names = this.#byNamespace.get(namespace);
    if (names === undefined) this.#byNamespace.set(namespace, (names = new Map()));
    const before = names.size;
    names.set(name, value);
    this.#size += names.size - before;
  }

  delete(namespace: string, name: string): boolean {
    const names = this.#byNamespace.get(namespace);
    if (names === undefined || !names.delete(name)) return false;
    this.#size--;
    if (names.size === 0) this.#byNamespace.delete(namespace);
    return true;
  }

  /** One namespace's entries by name (live: do not delete while iterating it). */
  namespace(namespace: string): ReadonlyMap<string, V> {
    return this.#byNamespace.get(namespace) ?? EMPTY;
  }

  *values(): IterableIterator<V> {
    for (const names of this.#byNamespace.values()) yield* names.values();
  }

  clear(): void {
    this.#byNamespace.clear();
    this.#size = 0;
  }
}

const EMPTY: ReadonlyMap<string, never> = new Map<string, never>();
