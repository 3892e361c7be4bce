// The seam between the engine and wherever GameServers live (memory or Kubernetes).
import type { GameServer } from '../allocation/types.ts';

/** Receives every change of a store's cache, in order. */
export interface StoreListener {
  /** A GameServer appeared or changed. */
  upsert(gs: GameServer): void;
  /** A GameServer disappeared (deleted, or left the served namespaces). */
  remove(namespace: string, name: string): void;
  /** The cache was replaced wholesale (e.g. after a relist); drop everything not re-upserted. */
  reset?(): void;
}

/** Thrown by update() when the object changed since it was read (resourceVersion mismatch). */
export class StoreConflict extends Error {
  override readonly name = 'StoreConflict';
}

/** Thrown by update() when the object no longer exists. */
export class StoreNotFound extends Error {
  override readonly name = 'StoreNotFound';
}

/**
 * Thrown by update() when the backing service refused the write itself (the API server's 400, 403,
 * 422…: validation, admission, RBAC). The write was not applied, so another candidate may be tried.
 */
export class StoreRejected extends Error {
  override readonly name = 'StoreRejected';
  /** HTTP status of the refusal. */
  readonly status: number;

  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** Ready and Allocated GameServers per node (Packed fills the busiest nodes first). */
export interface NodeCounts {
  allocatedOn(node: string): number;
  readyOn(node: string): number;
}

/** Where GameServers live. Reads come from a local cache; only update() does I/O. */
export interface ClusterStore {
  /** Replays the current cache to the listener, then streams changes; returns an unsubscribe. */
  subscribe(listener: StoreListener): () => void;
  /** One cached GameServer, or undefined. Never a network call. */
  get(namespace: string, name: string): GameServer | undefined;
  /**
   * Writes `next` only if the stored resourceVersion still equals `next.resourceVersion`.
   * Resolves with the stored object (new resourceVersion); rejects with StoreConflict,
   * StoreNotFound, the signal's reason when aborted before the write was sent (nothing
   * written), or an AllocationError NOT_READY when the backing service cannot take the write
   * (metadata.ambiguous 'true' when it may have applied it). Once sent, a write is not given
   * up for the signal: the store bounds it itself and learns its outcome, or reports it ambiguous.
   */
  update(next: GameServer, signal: AbortSignal): Promise<GameServer>;
  /**
   * Per-node counts over the cluster's namespaces the store does NOT serve, when it can read them
   * all; the engine adds the served ones it indexes, so Packed counts every namespace, as Agones
   * does. Null or absent = the served namespaces only.
   */
  readonly nodeCounts?: NodeCounts | null;
  /** True once the cache reflects the cluster (initial list done). */
  readonly synced: boolean;
  /** Starts filling the cache; resolves when synced. */
  start(): Promise<void>;
  close(): Promise<void>;
}
