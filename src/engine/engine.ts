// Local allocation: pick a GameServer from the index, write it through the store with an
// optimistic-concurrency precondition, move on to the next candidate on conflict.
import { AllocationError } from '../allocation/errors.ts';
import { inSpan, startSpan } from '../observability/tracing.ts';
import { gameServerKey, type Allocation, type AllocationRequest, type GameServer, type GameServerSelector } from '../allocation/types.ts';
import { StoreConflict, StoreNotFound, StoreRejected, type ClusterStore, type NodeCounts } from '../cluster/store.ts';
import { applyAllocation } from './actions.ts';
import { lastAllocatedNow } from './clock.ts';
import { GameServerIndex, type NodeRun } from './game-server-index.ts';
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
  /** Annotation keys the index can look up by value (the idempotency key). */
  readonly indexedAnnotations: readonly string[];
  readonly logger: EngineLogger;
  /** The agones.dev/last-allocated stamp (default: now, RFC 3339 with nanoseconds as Agones writes it). */
  readonly now?: () => string;
  /** Told each GameServer this engine allocated, as written, and the writes it took (events, metrics); must not block. */
  readonly onAllocated?: (written: GameServer, req: AllocationRequest, writeAttempts: number) => void;
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

/** Agones answers UNKNOWN "could not update the selected GameServer" when its update retries run out. */
function updateRejected(err: StoreRejected): AllocationError {
  return new AllocationError('UPDATE_REJECTED', `could not update the selected GameServer (the API server refused the write with HTTP ${err.status})`, {
    metadata: { status: String(err.status) },
  });
}

/** A lost write race this recent means another writer is racing us for the same candidates. */
const CONTENDED_MS = 1_000;

/**
 * How many of the best candidates a pick passes over. Another writer (a replica, whose cache
 * orders candidates as ours does) that won a race is ahead of us in the same order, and what it
 * took still looks Ready here until the watch event arrives: a retry passes over a random number
 * of the best, the range doubling per attempt (0–7, 0–15, … up to 0–255). While races are being
 * lost (one within the last second), every pick is spread four doublings wider (a first attempt
 * over 0–63), or two replicas keep colliding on nearly every allocation (1.8 writes each).
 * Packed order holds exactly while nobody races us.
 */
function passOver(attempt: number, contended: boolean): number {
  const step = attempt + (contended ? 4 : 0);
  return step === 0 ? 0 : Math.floor(Math.random() * 2 ** Math.min(step + 2, 8));
}

function firstUsable(run: NodeRun, usable: (gs: GameServer) => boolean): GameServer | undefined {
  for (const gs of run) if (usable(gs)) return gs;
  return undefined;
}

function* flatten(runs: Iterable<NodeRun>): Iterable<GameServer> {
  for (const run of runs) yield* run;
}

/** The smallest usable candidate by `compare`. */
function pickBest(candidates: Iterable<GameServer>, usable: (gs: GameServer) => boolean, compare: (a: GameServer, b: GameServer) => number): GameServer | undefined {
  let best: GameServer | undefined;
  for (const gs of candidates) if (usable(gs) && (!best || compare(gs, best) < 0)) best = gs;
  return best;
}

/** The usable candidates, best first. */
function bestFirst(candidates: Iterable<GameServer>, usable: (gs: GameServer) => boolean, compare: (a: GameServer, b: GameServer) => number): GameServer[] {
  return [...candidates].filter(usable).sort(compare);
}

/** The candidate `passOver` places after the best (or the last one, if there are fewer). */
function nthBest(candidates: Iterable<GameServer>, usable: (gs: GameServer) => boolean, compare: (a: GameServer, b: GameServer) => number, passOver: number): GameServer | undefined {
  const sorted = bestFirst(candidates, usable, compare);
  return sorted[Math.min(passOver, sorted.length - 1)];
}

/** The usable GameServers of name-sorted runs, in name order across the runs. */
function* mergedByName(runs: readonly NodeRun[], usable: (gs: GameServer) => boolean): Generator<GameServer> {
  const at = runs.map(() => 0);
  for (;;) {
    let best = -1;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      while (at[r]! < run.length && !usable(run[at[r]!]!)) at[r]!++;
      if (at[r]! < run.length && (best === -1 || run[at[r]!]!.name < runs[best]![at[best]!]!.name)) best = r;
    }
    if (best === -1) return;
    yield runs[best]![at[best]!++]!;
  }
}

/** Probes this many random candidates before falling back to a full uniform scan. */
const RANDOM_PROBES = 32;

/** Distributed: a uniformly random usable GameServer, by random probes, then reservoir sampling. */
function pickRandom(runs: ReadonlyMap<string, NodeRun>, usable: (gs: GameServer) => boolean): GameServer | undefined {
  let total = 0;
  for (const run of runs.values()) total += run.length;
  for (let probe = 0; probe < RANDOM_PROBES; probe++) {
    let at = Math.floor(Math.random() * total);
    for (const run of runs.values()) {
      if (at < run.length) {
        const gs = run[at]!;
        if (usable(gs)) return gs;
        break;
      }
      at -= run.length;
    }
  }
  let chosen: GameServer | undefined;
  let seen = 0;
  for (const run of runs.values()) {
    for (const gs of run) if (usable(gs) && Math.random() * ++seen < 1) chosen = gs;
  }
  return chosen;
}

export class Engine {
  readonly index: GameServerIndex;
  #allCounts: { readonly others: NodeCounts; readonly counts: NodeCounts } | undefined;
  readonly #store: ClusterStore;
  readonly #opts: EngineOptions;
  readonly #inFlight = new Set<string>();
  #lastConflictAt = -Infinity;
  readonly #now: () => string;
  #unsubscribe: (() => void) | null = null;

  constructor(store: ClusterStore, opts: EngineOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#now = opts.now ?? lastAllocatedNow;
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

  /**
   * The best candidate for the request, skipping in-flight ones and versions already tried; with
   * `passOver`, that many of the best of the first selector that matches are passed over (fewer if
   * it has not that many).
   */
  pick(req: AllocationRequest, tried: ReadonlyMap<string, string> = new Map(), passOver = 0): GameServer | undefined {
    for (const s of req.selectors) {
      const found = this.#pickFor(req, s, tried, passOver);
      if (found) return found;
    }
    return undefined;
  }

  #pickFor(req: AllocationRequest, s: GameServerSelector, tried: ReadonlyMap<string, string>, passOver: number): GameServer | undefined {
    const runs = this.index.runs(req.namespace, s.gameServerState, s.matchLabels);
    if (runs.size === 0) return undefined;
    const usable = (gs: GameServer): boolean => {
      if (!matches(gs, s)) return false;
      const key = gameServerKey(gs);
      return !this.#inFlight.has(key) && tried.get(key) !== gs.resourceVersion;
    };
    if (req.scheduling === 'Distributed') {
      if (req.priorities.length === 0) return pickRandom(runs, usable); // random already: nothing to pass over
      const compare = (a: GameServer, b: GameServer) => compareDistributed(a, b, req.priorities);
      return passOver === 0 ? pickBest(flatten(runs.values()), usable, compare) : nthBest(flatten(runs.values()), usable, compare, passOver);
    }
    return this.#pickPacked(runs, usable, req, passOver);
  }

  /** The served namespaces' counts (the index) plus, when the store reads them, every other namespace's. */
  #nodeCounts(): NodeCounts {
    const others = this.#store.nodeCounts;
    if (!others) return this.index;
    if (this.#allCounts?.others !== others) {
      const index = this.index;
      this.#allCounts = { others, counts: { allocatedOn: (n) => index.allocatedOn(n) + others.allocatedOn(n), readyOn: (n) => index.readyOn(n) + others.readyOn(n) } };
    }
    return this.#allCounts.counts;
  }

  /**
   * Packed: nodes in order of (Allocated desc, Ready desc); inside a group of equally busy nodes the
   * comparator decides. Without priorities or player ordering, each node's run is already in name
   * order, so the first usable GameServer of a node is that node's best: the walk stops early.
   */
  #pickPacked(runs: ReadonlyMap<string, NodeRun>, usable: (gs: GameServer) => boolean, req: AllocationRequest, passOver: number): GameServer | undefined {
    const counts = this.#nodeCounts();
    const nodes = [...runs.keys()].map((node) => ({ node, allocated: counts.allocatedOn(node), ready: counts.readyOn(node) }));
    nodes.sort((a, b) => b.allocated - a.allocated || b.ready - a.ready);
    const byNameOnly = req.priorities.length === 0 && !this.#opts.playerAllocationFilter;
    const compare = (a: GameServer, b: GameServer) => comparePacked(a, b, counts, req.priorities, this.#opts.playerAllocationFilter);
    let left = passOver;
    let last: GameServer | undefined;
    for (let i = 0; i < nodes.length; ) {
      let j = i;
      while (j < nodes.length && nodes[j]!.allocated === nodes[i]!.allocated && nodes[j]!.ready === nodes[i]!.ready) j++;
      const group = nodes.slice(i, j).map((n) => runs.get(n.node)!);
      i = j;
      if (left === 0) {
        const best = byNameOnly
          ? pickBest(group.map((run) => firstUsable(run, usable)).filter((g): g is GameServer => g !== undefined), () => true, compare)
          : pickBest(flatten(group), usable, compare);
        if (best) return best;
        continue;
      }
      // passing over: walk the group best first
      for (const gs of byNameOnly ? mergedByName(group, usable) : bestFirst(flatten(group), usable, compare)) {
        last = gs;
        if (left-- === 0) return gs;
      }
    }
    return last;
  }


  /** Allocates one GameServer for the request in the local cluster. */
  async allocate(req: AllocationRequest, ctx: AllocateContext): Promise<Allocation> {
    if (!this.#store.synced) throw new AllocationError('NOT_READY', 'the local cluster cache has not synced yet');
    const tried = new Map<string, string>();
    let rejected: StoreRejected | null = null;
    for (let attempt = 0; attempt < this.#opts.maxWriteAttempts; attempt++) {
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      const pickSpan = startSpan('local pick', { 'allocator_gateway.namespace': req.namespace, 'allocator_gateway.attempt': attempt });
      const gs = this.pick(req, tried, passOver(attempt, performance.now() - this.#lastConflictAt < CONTENDED_MS));
      pickSpan.end(gs ? { 'allocator_gateway.outcome': 'picked', 'allocator_gateway.game_server': gameServerKey(gs) } : { 'allocator_gateway.outcome': 'NO_GAME_SERVER' });
      if (!gs) {
        if (rejected) throw updateRejected(rejected);
        throw new AllocationError('NO_GAME_SERVER', 'there is no available GameServer to allocate', {
          metadata: { namespace: req.namespace },
        });
      }
      const key = gameServerKey(gs);
      tried.set(key, gs.resourceVersion);
      this.#inFlight.add(key);
      try {
        const next = applyAllocation(gs, req, this.#now(), ctx.annotations);
        // The store honours the caller's signal only until the write is sent: once sent it
        // finishes (or is settled, or reported ambiguous) so that its outcome is known. The
        // store owns the write timeout; the engine sets no timer of its own.
        const written = await inSpan('GameServer write', { 'allocator_gateway.game_server': key }, () => this.#store.update(next, ctx.signal), 'client');
        if (ctx.signal.aborted) {
          await this.#release(gs, written);
          throw abortError(ctx.signal);
        }
        this.#opts.onAllocated?.(written, req, attempt + 1);
        return allocationOf(written, 'local');
      } catch (err) {
        if (err instanceof StoreConflict || err instanceof StoreNotFound) {
          if (err instanceof StoreConflict) this.#lastConflictAt = performance.now();
          this.#opts.logger.debug({ gameServer: key, attempt }, 'allocation write conflicted; trying the next candidate');
          continue;
        }
        if (err instanceof StoreRejected) {
          // not applied: the next candidate may take it (Agones retries too); the API server's words go to the log only
          this.#opts.logger.warn({ gameServer: key, attempt, status: err.status, err: err.message }, 'the API server refused the allocation write; trying the next candidate');
          rejected = err;
          continue;
        }
        // the caller gave up before the write was sent: nothing was written
        if (ctx.signal.aborted && err === ctx.signal.reason) throw abortError(ctx.signal);
        throw err;
      } finally {
        this.#inFlight.delete(key);
      }
    }
    if (rejected) throw updateRejected(rejected);
    throw new AllocationError('CONTENTION', 'too many concurrent allocations competed for the same GameServers; retry');
  }

  /** Undoes an allocation nobody will receive (the caller gave up while it was being written). */
  async #release(before: GameServer, written: GameServer): Promise<void> {
    try {
      await this.#store.update({ ...before, resourceVersion: written.resourceVersion }, new AbortController().signal);
      this.#opts.logger.warn({ gameServer: gameServerKey(before) }, 'caller gave up during the allocation write; GameServer released');
    } catch (err) {
      this.#opts.logger.warn({ gameServer: gameServerKey(before), err }, 'could not release a GameServer whose caller gave up');
    }
  }
}
