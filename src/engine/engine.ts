// Local allocation: pick a GameServer from the index, write it through the store with an
// optimistic-concurrency precondition, move on to the next candidate on conflict.
import { AllocationError } from '../allocation/errors.ts';
import { gameServerKey, type Allocation, type AllocationRequest, type GameServer, type GameServerSelector } from '../allocation/types.ts';
import { StoreConflict, StoreNotFound, type ClusterStore } from '../cluster/store.ts';
import { applyAllocation } from './actions.ts';
import { GameServerIndex } from './game-server-index.ts';
import { matches } from './match.ts';
import { compareDistributed, comparePacked } from './order.ts';

/** Minimal logger shape (pino-compatible) so the engine does not depend on pino. */
export interface EngineLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface EngineOptions {
  /** Agones' PlayerAllocationFilter gate (players ordering term). */
  readonly playerAllocationFilter: boolean;
  /** Writes tried per request before giving up with CONTENTION. */
  readonly maxWriteAttempts: number;
  /** A started write is allowed this long even when the caller has gone, so it is never left half-known. */
  readonly writeTimeoutMs: number;
  /** Annotation keys the index can look up by value (the idempotency key). */
  readonly indexedAnnotations: readonly string[];
  readonly logger: EngineLogger;
  readonly now?: () => Date;
}

/** What the caller's call context gives the engine. */
export interface AllocateContext {
  /** Aborted when the caller's deadline passes or it cancels. */
  readonly signal: AbortSignal;
  /** Extra annotations written with the allocation (e.g. the idempotency key). */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Converts a stored GameServer into the caller-facing allocation. */
export function allocationOf(gs: GameServer, source: string): Allocation {
  return {
    gameServerName: gs.name,
    namespace: gs.namespace,
    address: gs.address,
    addresses: gs.addresses,
    ports: gs.ports,
    nodeName: gs.nodeName,
    metadata: { labels: gs.labels, annotations: gs.annotations },
    counters: gs.counters,
    lists: gs.lists,
    source,
  };
}

/** Maps an aborted signal to the catalogued reason. */
export function abortError(signal: AbortSignal): AllocationError {
  const r: unknown = signal.reason;
  const timedOut = r instanceof Error && (r.name === 'TimeoutError' || (r as AllocationError).reason === 'DEADLINE_EXCEEDED');
  return timedOut
    ? new AllocationError('DEADLINE_EXCEEDED', 'the caller\'s deadline passed before a GameServer was allocated')
    : new AllocationError('CANCELLED', 'the caller cancelled the request');
}

export class Engine {
  readonly index: GameServerIndex;
  readonly #store: ClusterStore;
  readonly #opts: EngineOptions;
  readonly #inFlight = new Set<string>();
  readonly #now: () => Date;
  #unsubscribe: (() => void) | null = null;

  constructor(store: ClusterStore, opts: EngineOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#now = opts.now ?? (() => new Date());
    this.index = new GameServerIndex(opts.indexedAnnotations);
  }

  /** Starts following the store; resolves once its cache has synced. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#store.subscribe(this.index);
    await this.#store.start();
  }

  get ready(): boolean {
    return this.#store.synced;
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.#store.close();
  }

  /** The best candidate for the request, skipping in-flight ones and versions already tried. */
  pick(req: AllocationRequest, tried: ReadonlyMap<string, string> = new Map()): GameServer | undefined {
    for (const s of req.selectors) {
      const found = this.#pickFor(req, s, tried);
      if (found) return found;
    }
    return undefined;
  }

  #pickFor(req: AllocationRequest, s: GameServerSelector, tried: ReadonlyMap<string, string>): GameServer | undefined {
    const random = req.scheduling === 'Distributed' && req.priorities.length === 0;
    let best: GameServer | undefined;
    let seen = 0;
    for (const gs of this.index.candidates(req.namespace, s.gameServerState, s.matchLabels)) {
      if (!matches(gs, s)) continue;
      const key = gameServerKey(gs);
      if (this.#inFlight.has(key) || tried.get(key) === gs.resourceVersion) continue;
      if (random) {
        // Reservoir sampling: a uniform pick in one pass.
        if (Math.random() * ++seen < 1) best = gs;
      } else if (!best || this.#compare(gs, best, req) < 0) {
        best = gs;
      }
    }
    return best;
  }

  #compare(a: GameServer, b: GameServer, req: AllocationRequest): number {
    return req.scheduling === 'Packed'
      ? comparePacked(a, b, this.index, req.priorities, this.#opts.playerAllocationFilter)
      : compareDistributed(a, b, req.priorities);
  }

  /** Allocates one GameServer for the request in the local cluster. */
  async allocate(req: AllocationRequest, ctx: AllocateContext): Promise<Allocation> {
    if (!this.#store.synced) throw new AllocationError('NOT_READY', 'the local cluster cache has not synced yet');
    const tried = new Map<string, string>();
    for (let attempt = 0; attempt < this.#opts.maxWriteAttempts; attempt++) {
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      const gs = this.pick(req, tried);
      if (!gs) {
        throw new AllocationError('NO_GAME_SERVER', 'there is no available GameServer to allocate', {
          metadata: { namespace: req.namespace },
        });
      }
      const key = gameServerKey(gs);
      tried.set(key, gs.resourceVersion);
      this.#inFlight.add(key);
      try {
        const next = applyAllocation(gs, req, this.#now(), ctx.annotations);
        // The write is not tied to the caller's signal: once sent it must finish so its outcome is known.
        const written = await this.#store.update(next, AbortSignal.timeout(this.#opts.writeTimeoutMs));
        if (ctx.signal.aborted) {
          await this.#release(gs, written);
          throw abortError(ctx.signal);
        }
        return allocationOf(written, 'local');
      } catch (err) {
        if (err instanceof StoreConflict || err instanceof StoreNotFound) {
          this.#opts.logger.debug({ gameServer: key, attempt }, 'allocation write conflicted; trying the next candidate');
          continue;
        }
        throw err;
      } finally {
        this.#inFlight.delete(key);
      }
    }
    throw new AllocationError('CONTENTION', 'too many concurrent allocations competed for the same GameServers; retry');
  }

  /** Undoes an allocation nobody will receive (the caller gave up while it was being written). */
  async #release(before: GameServer, written: GameServer): Promise<void> {
    try {
      await this.#store.update({ ...before, resourceVersion: written.resourceVersion }, AbortSignal.timeout(this.#opts.writeTimeoutMs));
      this.#opts.logger.warn({ gameServer: gameServerKey(before) }, 'caller gave up during the allocation write; GameServer released');
    } catch (err) {
      this.#opts.logger.warn({ gameServer: gameServerKey(before), err }, 'could not release a GameServer whose caller gave up');
    }
  }
}
