// ClusterStore on a real cluster: one list+watch per served namespace fills a local cache of
// agones.dev/v1 GameServers; update() PUTs the full stored object back with its resourceVersion
// as precondition, so a concurrent change fails with StoreConflict instead of being overwritten.
import { KubeConfig } from '@kubernetes/client-node';
import { AllocationError } from '../../allocation/errors.ts';
import { own } from '../../allocation/records.ts';
import { GameServerMap } from '../../allocation/game-server-map.ts';
import { gameServerKey, type GameServer } from '../../allocation/types.ts';
import { StoreConflict, StoreNotFound, StoreRejected, type ClusterStore, type StoreListener } from '../store.ts';
import { compareResourceVersions, toGameServer, toGameServerObject, type GameServerObject } from './game-server-object.ts';
import { KubeHttp, KubernetesApiError, statusOf } from './kube-http.ts';
import { NamespaceReflector, describe, type ReflectorSink, type WatchEventType } from './namespace-reflector.ts';
import { NodeCounter } from './node-counter.ts';
import { ObjectPacker, type PackedObject } from './packed-object.ts';
import { silentLogger, type StoreLogger } from './store-logger.ts';
import { TokenBucket } from './token-bucket.ts';

export interface KubernetesStoreOptions {
  /** A loaded KubeConfig, a kubeconfig file path, or 'in-cluster' (service-account token). */
  readonly kubeConfig: KubeConfig | string;
  /** Namespaces whose GameServers are served (one list+watch each). */
  readonly namespaces: readonly string[];
  readonly logger?: StoreLogger;
  /** Write rate limit (updates per second); default 200; 0 = unlimited. */
  readonly qps?: number;
  /** Writes allowed at once above the rate; default 2 × qps. */
  readonly burst?: number;
  /** A write budget shared with other API server writers (then qps and burst are ignored). */
  readonly writeLimiter?: TokenBucket;
  /** Items per page of the initial list; default 500. */
  readonly listPageSize?: number;
  /** Backoff between list/watch retries: first delay (default 250 ms) and cap (default 10 s). */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * The one bound on a GameServer write, default 10 s: how long a sent write waits for its
   * answer, then how long an unanswered write is read back before it is reported as ambiguous.
   */
  readonly writeTimeoutMs?: number;
  /**
   * Count Ready/Allocated GameServers per node over every namespace (the served ones from their
   * watches, the others from one cluster-wide list+watch that leaves the served ones out), as
   * Agones does for Packed; default true. Without the RBAC for it, the served namespaces are counted.
   */
  readonly clusterNodeCounts?: boolean;
  /** Told how each write whose answer was lost was settled (metrics). */
  readonly onLostAnswer?: (settled: 'applied' | 'changed' | 'unknown') => void;
}

/** One cached GameServer: the domain view and the stored object to write back from. */
interface Entry {
  readonly gs: GameServer;
  readonly stored: PackedObject;
}

/** Deleted keys remembered so that a late write response cannot resurrect them. */
const TOMBSTONE_LIMIT = 10_000;

/** Loads a KubeConfig from a path, 'in-cluster', or returns the given one. */
export function loadKubeConfig(source: KubeConfig | string): KubeConfig {
  if (source instanceof KubeConfig) return source;
  const kc = new KubeConfig();
  if (source === 'in-cluster') kc.loadFromCluster();
  else kc.loadFromFile(source);
  return kc;
}

export class KubernetesStore implements ClusterStore {
  readonly #kubeConfig: KubeConfig;
  readonly #namespaces: readonly string[];
  readonly #log: StoreLogger;
  readonly #http: KubeHttp;
  readonly #limiter: TokenBucket;
  readonly #opts: KubernetesStoreOptions;
  readonly #entries = new GameServerMap<Entry>();
  readonly #packer = new ObjectPacker();
  readonly #tombstones = new Map<string, string>();
  readonly #listeners = new Set<StoreListener>();
  readonly #reflectors: Pick<NamespaceReflector<unknown>, 'synced' | 'whenSynced' | 'stop'>[] = [];
  #starting: Promise<void> | undefined;
  #closed = false;
  readonly #closing = new AbortController();
  #lastUnavailableLogMs = 0;
  /** Keys whose cached copy a 409 proved stale: withheld from listeners until the watch brings a newer one. */
  readonly #hidden = new Set<string>();
  /** Cluster-wide per-node counts, when the cluster-wide read is allowed. */
  #nodeCounts: NodeCounter | null = null;

  constructor(opts: KubernetesStoreOptions) {
    if (opts.namespaces.length === 0) throw new Error('KubernetesStore needs at least one namespace');
    this.#opts = opts;
    this.#kubeConfig = loadKubeConfig(opts.kubeConfig);
    this.#namespaces = [...new Set(opts.namespaces)];
    this.#log = opts.logger ?? silentLogger;
    this.#http = new KubeHttp(this.#kubeConfig);
    const qps = opts.qps ?? 200;
    this.#limiter = opts.writeLimiter ?? new TokenBucket(qps, opts.burst ?? Math.max(1, Math.ceil(qps * 2)));
  }

  get synced(): boolean {
    return this.#reflectors.length > 0 && this.#reflectors.every((r) => r.synced);
  }

  get nodeCounts(): NodeCounter | null {
    return this.#nodeCounts;
  }

  /** Starts one list+watch per namespace; resolves when every initial list is in the cache. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#closed) throw new Error('KubernetesStore is closed');
    const sink: ReflectorSink<Entry> = {
      prepare: (obj) => ({ gs: toGameServer(obj), stored: this.#packer.pack(obj) }),
      discard: (items) => {
        for (const e of items) this.#packer.release(e.stored);
      },
      replace: (ns, items, rv, relist) => this.#replace(ns, items, rv, relist),
      event: (_ns, type, obj) => this.#event(type, obj),
    };
    for (const namespace of this.#namespaces) {
      const reflector = new NamespaceReflector({
        namespace,
        http: this.#http,
        sink,
        logger: this.#log,
        ...(this.#opts.listPageSize !== undefined ? { pageSize: this.#opts.listPageSize } : {}),
        ...(this.#opts.minBackoffMs !== undefined ? { minBackoffMs: this.#opts.minBackoffMs } : {}),
        ...(this.#opts.maxBackoffMs !== undefined ? { maxBackoffMs: this.#opts.maxBackoffMs } : {}),
      });
      this.#reflectors.push(reflector);
      reflector.start();
    }
    if (this.#opts.clusterNodeCounts !== false) await this.#startNodeCounts();
    if (this.#closing.signal.aborted) throw new Error('KubernetesStore closed before it synced');
    const t0 = Date.now();
    const closed = new Promise<never>((_, reject) =>
      this.#closing.signal.addEventListener('abort', () => reject(new Error('KubernetesStore closed before it synced')), { once: true }),
    );
    closed.catch(() => {}); // only start()'s caller should see this
    await Promise.race([Promise.all(this.#reflectors.map((r) => r.whenSynced)), closed]);
    this.#log.info(
      { namespaces: this.#namespaces, gameServers: this.#entries.size, latencyMs: Date.now() - t0 },
      'GameServer cache synced',
    );
  }

  /**
   * One cluster-wide list+watch feeding per-node counts of the namespaces NOT served, if this
   * identity may read GameServers in every namespace (otherwise Packed counts only the served
   * namespaces, logged once). The served ones are counted from their own watch: reading them twice
   * doubled the watch events every allocation costs the gateway and the API server.
   */
  async #startNodeCounts(): Promise<void> {
    let status = 0;
    try {
      status = (await this.#http.request('GET', '/apis/agones.dev/v1/gameservers?limit=1', { signal: this.#closing.signal, timeoutMs: 10_000 })).status;
    } catch {
      status = 0;
    }
    if (status !== 200) {
      this.#log.info({ status }, 'GameServers cannot be read in every namespace: Packed counts GameServers per node in the served namespaces only');
      return;
    }
    const counter = new NodeCounter();
    const fieldSelector = this.#namespaces.map((ns) => `metadata.namespace!=${ns}`).join(',');
    const reflector = new NamespaceReflector({ namespace: '', fieldSelector, http: this.#http, sink: counter, logger: this.#log, ...(this.#opts.minBackoffMs !== undefined ? { minBackoffMs: this.#opts.minBackoffMs } : {}), ...(this.#opts.maxBackoffMs !== undefined ? { maxBackoffMs: this.#opts.maxBackoffMs } : {}) });
    this.#reflectors.push(reflector);
    reflector.start();
    this.#nodeCounts = counter;
  }

  subscribe(listener: StoreListener): () => void {
    for (const { gs } of this.#entries.values()) if (!this.#isHidden(gs)) listener.upsert(gs);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get(namespace: string, name: string): GameServer | undefined {
    return this.#entries.get(namespace, name)?.gs;
  }

  /** Number of cached GameServers. */
  get size(): number {
    return this.#entries.size;
  }

  async update(next: GameServer, signal: AbortSignal): Promise<GameServer> {
    // `signal` (the caller) is honoured until the write is sent; after that the write runs to a
    // known outcome or to writeTimeoutMs, so an allocation is never left Allocated unknowingly.
    signal.throwIfAborted();
    const key = gameServerKey(next);
    const entry = this.#entries.get(next.namespace, next.name);
    if (entry === undefined) throw new StoreNotFound(`GameServer ${key} not found`);
    if (entry.gs.resourceVersion !== next.resourceVersion) {
      // we only hold the stored object at the cached version: writing from it would be a blind overwrite
      throw new StoreConflict(`GameServer ${key} changed (cached ${entry.gs.resourceVersion}, wrote ${next.resourceVersion})`);
    }
    await this.#limiter.take(signal);
    const body = toGameServerObject(next, this.#packer.unpack(entry.stored, entry.gs));
    const path = `/apis/agones.dev/v1/namespaces/${encodeURIComponent(next.namespace)}/gameservers/${encodeURIComponent(next.name)}`;
    const timeoutMs = this.#writeTimeoutMs;
    let res;
    try {
      res = await this.#http.request('PUT', path, { body, signal: this.#closing.signal, timeoutMs });
    } catch (err) {
      if (!(err instanceof KubernetesApiError)) throw err;
      const code = (err.cause as { code?: unknown } | undefined)?.code;
      // a refused connection never carried the write; anything later may have
      if (code === 'ECONNREFUSED') throw this.#unavailable(key, 'unreachable', false, err);
      const what = code === 'ETIMEDOUT' ? `no answer within ${timeoutMs} ms` : err.reason === 'Closed' ? 'the gateway is shutting down' : 'connection lost';
      return await this.#settle(next, entry, path, body, what, err);
    }
    switch (res.status) {
      case 200:
      case 201: {
        const stored = this.#applyWrite(res.body as GameServerObject);
        return stored;
      }
      case 409:
        this.#hideStale(key, entry);
        throw new StoreConflict(`GameServer ${key}: ${statusOf(res).message}`);
      case 404:
        throw new StoreNotFound(`GameServer ${key}: ${statusOf(res).message}`);
      default: {
        const s = statusOf(res);
        const err = new KubernetesApiError(res.status, s.reason, `update GameServer ${key}: ${s.message}`);
        // overloaded, starting or failing API server: callers should retry, it is not a gateway bug
        if (res.status === 429 || res.status === 503) throw this.#unavailable(key, `HTTP ${res.status}`, false, err);
        if (res.status >= 500) return await this.#settle(next, entry, path, body, `HTTP ${res.status}`, err);
        // any other 4xx: refused outright (invalid object, webhook, RBAC), so certainly not applied
        if (res.status >= 400) throw new StoreRejected(res.status, `update GameServer ${key}: HTTP ${res.status} ${s.reason}: ${s.message}`, { cause: err });
        // not an answer a PUT gets (1xx, 3xx, another 2xx): whether it applied is learned by reading back
        return await this.#settle(next, entry, path, body, `HTTP ${res.status}`, err);
      }
    }
  }

  get #writeTimeoutMs(): number {
    return this.#opts.writeTimeoutMs ?? 10_000;
  }

  /**
   * Settles a write whose answer was lost (connection dropped or stalled, API server crashed,
   * 500/504) within writeTimeoutMs. A read-back that still shows the old resourceVersion does
   * not prove the write will never apply (it may wait in an admission webhook or on etcd), so
   * the same write is sent again with the same precondition: only one of the two can apply.
   * Applied (ours, or carrying everything ours set) = a success; changed by another writer =
   * StoreConflict; still unknown at the end = NOT_READY with ambiguous 'true', never the raw
   * transport error. Without this an applied allocation whose reply was lost, or one that
   * lands later, would be Allocated with no caller told.
   */
  async #settle(next: GameServer, entry: Entry, path: string, body: GameServerObject, what: string, cause: KubernetesApiError): Promise<GameServer> {
    const key = gameServerKey(next);
    const bound = new AbortController();
    const timer = setTimeout(() => bound.abort(), this.#writeTimeoutMs);
    const signal = AbortSignal.any([bound.signal, this.#closing.signal]);
    try {
      for (let delay = 50; !signal.aborted; delay = Math.min(delay * 2, 500)) {
        const res = await this.#http.request('GET', path, { signal, timeoutMs: 2_000 }).catch(() => undefined);
        if (res?.status === 404) throw new StoreNotFound(`GameServer ${key} not found`);
        if (res?.status === 200) {
          const obj = res.body as GameServerObject;
          if ((obj.metadata?.resourceVersion ?? '') !== next.resourceVersion) {
            if (carries(obj, next)) {
              this.#log.info({ gameServer: key }, 'GameServer write whose answer was lost was applied; counted as written');
              this.#opts.onLostAnswer?.('applied');
              return this.#applyWrite(obj);
            }
            this.#hideStale(key, entry);
            this.#opts.onLostAnswer?.('changed');
            throw new StoreConflict(`GameServer ${key} was changed by another writer while its write was unanswered`);
          }
          const again = await this.#http.request('PUT', path, { body, signal, timeoutMs: 2_000 }).catch(() => undefined);
          if (again?.status === 200 || again?.status === 201) {
            this.#log.info({ gameServer: key }, 'GameServer write whose answer was lost was sent again and applied');
            this.#opts.onLostAnswer?.('applied');
            return this.#applyWrite(again.body as GameServerObject);
          }
          if (again?.status === 404) throw new StoreNotFound(`GameServer ${key} not found`);
          // 409: one of the two applied, or another writer: the next read tells
        }
        await sleep(delay, signal);
      }
    } finally {
      clearTimeout(timer);
    }
    this.#log.warn(
      { gameServer: key, resourceVersion: next.resourceVersion },
      'could not learn whether a GameServer write whose answer was lost was applied: it may be Allocated with no caller',
    );
    this.#opts.onLostAnswer?.('unknown');
    throw this.#unavailable(key, what, true, cause);
  }

  /** The API server could not take a write: UNAVAILABLE for the caller (NOT_READY), warned at most once a second. */
  #unavailable(key: string, what: string, ambiguous: boolean, cause: KubernetesApiError): AllocationError {
    const now = Date.now();
    if (now - this.#lastUnavailableLogMs >= 1_000) {
      this.#lastUnavailableLogMs = now;
      this.#log.warn({ gameServer: key, err: describe(cause), ambiguous }, 'GameServer write failed: the API server is unavailable');
    }
    const message = ambiguous
      ? `the Kubernetes API server did not confirm the allocation write (${what}); it may still be applied: retry with the same idempotency key to get its result`
      : `the Kubernetes API server did not take the allocation write (${what}); retry`;
    return new AllocationError('NOT_READY', message, {
      cause,
      // the write may have been applied even though no answer came back
      metadata: { ambiguous: String(ambiguous) },
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new KubernetesApiError(0, 'Closed', 'the GameServer store was closed'));
    await Promise.all(this.#reflectors.map((r) => r.stop()));
    this.#http.close();
    this.#listeners.clear();
  }

  // ------------------------------------------------------------------------------------------
  // cache maintenance

  /**
   * A 409 proves the cached copy is older than the stored object (another writer got there
   * first). Until the watch delivers the newer version, listeners drop it, so that no other
   * request spends a write on it. Matters while the watch lags: another replica's burst, or
   * the seconds after an API server restart before the watch is back.
   */
  #hideStale(key: string, entry: Entry): void {
    const gs = entry.gs;
    if (this.#entries.get(gs.namespace, gs.name) !== entry || this.#hidden.has(key)) return; // the watch was quicker
    this.#hidden.add(key);
    this.#notify((l) => l.remove(gs.namespace, gs.name));
  }

  /** A write succeeded: cache its result now (the watch event, when it comes, is then a no-op). */
  #applyWrite(obj: GameServerObject): GameServer {
    const key = keyOf(obj);
    const rv = obj.metadata.resourceVersion ?? '';
    const gone = this.#tombstones.get(key);
    const cached = this.#entries.get(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    if (cached !== undefined && isNotNewer(rv, cached.gs.resourceVersion)) {
      // the watch was quicker (same version) or the cache already knows something newer
      return cached.gs.resourceVersion === rv ? cached.gs : toGameServer(obj);
    }
    if (gone !== undefined && isNotNewer(rv, gone)) return toGameServer(obj); // deleted meanwhile
    return this.#put(key, obj);
  }

  #event(type: WatchEventType, obj: GameServerObject): void {
    const key = keyOf(obj);
    const rv = obj.metadata.resourceVersion ?? '';
    const cached = this.#entries.get(obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    if (type === 'DELETED') {
      if (cached !== undefined && compareResourceVersions(rv, cached.gs.resourceVersion) === -1) return;
      this.#remember(key, rv);
      if (cached !== undefined) this.#drop(key, cached);
      return;
    }
    if (cached !== undefined && isNotNewer(rv, cached.gs.resourceVersion)) return; // stale or already applied
    const gone = this.#tombstones.get(key);
    if (gone !== undefined) {
      if (isNotNewer(rv, gone)) return;
      this.#tombstones.delete(key);
    }
    this.#put(key, obj);
  }

  #replace(namespace: string, items: readonly Entry[], listRv: string, relist: boolean): void {
    const seen = new Set<string>(); // names
    const changed: GameServer[] = [];
    const removed: GameServer[] = [];
    for (const e of items) {
      const gs = e.gs;
      const key = gameServerKey(gs);
      seen.add(gs.name);
      this.#tombstones.delete(key);
      const cached = this.#entries.get(gs.namespace, gs.name);
      // unchanged, or our own write cached something newer after the list was taken: keep it
      if (cached !== undefined && isNotNewer(gs.resourceVersion, cached.gs.resourceVersion)) {
        this.#packer.release(e.stored);
        // withheld after a 409 yet unchanged in the list: show it again rather than lose it
        if (this.#hidden.delete(key)) changed.push(cached.gs);
        continue;
      }
      this.#hidden.delete(key);
      this.#entries.set(gs.namespace, gs.name, e);
      if (cached !== undefined) this.#packer.release(cached.stored);
      changed.push(gs);
    }
    for (const cached of [...this.#entries.namespace(namespace).values()]) {
      const gs = cached.gs;
      if (seen.has(gs.name) || compareResourceVersions(gs.resourceVersion, listRv) === 1) continue;
      const key = gameServerKey(gs);
      this.#entries.delete(namespace, gs.name);
      this.#hidden.delete(key);
      this.#packer.release(cached.stored);
      this.#remember(key, listRv); // absent as of the list: a late write response must not bring it back
      removed.push(gs);
    }
    if (!relist) {
      for (const gs of changed) this.#notify((l) => l.upsert(gs));
      return;
    }
    this.#log.info({ namespace, gameServers: seen.size, removed: removed.length, resourceVersion: listRv }, 'GameServers relisted');
    for (const l of this.#listeners) {
      if (l.reset !== undefined) {
        this.#call(() => l.reset?.());
        for (const { gs } of this.#entries.values()) if (!this.#isHidden(gs)) this.#call(() => l.upsert(gs));
      } else {
        for (const gs of removed) this.#call(() => l.remove(gs.namespace, gs.name));
        for (const gs of changed) this.#call(() => l.upsert(gs));
      }
    }
  }

  /** Caches obj and tells the listeners. */
  #put(key: string, obj: GameServerObject): GameServer {
    const gs = this.#store(obj);
    this.#hidden.delete(key);
    this.#notify((l) => l.upsert(gs));
    return gs;
  }

  /** Caches obj without telling anyone. */
  #store(obj: GameServerObject): GameServer {
    const gs = toGameServer(obj);
    const previous = this.#entries.get(gs.namespace, gs.name);
    this.#entries.set(gs.namespace, gs.name, { gs, stored: this.#packer.pack(obj) });
    if (previous !== undefined) this.#packer.release(previous.stored);
    return gs;
  }

  #drop(key: string, entry: Entry): void {
    const gs = entry.gs;
    this.#entries.delete(gs.namespace, gs.name);
    this.#hidden.delete(key);
    this.#packer.release(entry.stored);
    this.#notify((l) => l.remove(gs.namespace, gs.name));
  }

  #isHidden(gs: GameServer): boolean {
    return this.#hidden.size > 0 && this.#hidden.has(gameServerKey(gs));
  }

  #remember(key: string, rv: string): void {
    this.#tombstones.delete(key);
    this.#tombstones.set(key, rv);
    if (this.#tombstones.size > TOMBSTONE_LIMIT) {
      const oldest = this.#tombstones.keys().next();
      if (oldest.done !== true) this.#tombstones.delete(oldest.value);
    }
  }

  #notify(f: (l: StoreListener) => void): void {
    for (const l of this.#listeners) this.#call(() => f(l));
  }

  #call(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.#log.error({ err: describe(err) }, 'GameServer store listener threw');
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** True when the stored object has the state, labels and annotations `gs` would have written. */
function carries(obj: GameServerObject, gs: GameServer): boolean {
  const labels = obj.metadata.labels ?? {};
  const annotations = obj.metadata.annotations ?? {};
  return (
    obj.status?.state === gs.state &&
    Object.entries(gs.labels).every(([k, v]) => own(labels, k) === v) &&
    Object.entries(gs.annotations).every(([k, v]) => own(annotations, k) === v)
  );
}

function keyOf(obj: GameServerObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

/** True when `rv` is known to be the same as or older than `than`. */
function isNotNewer(rv: string, than: string): boolean {
  const c = compareResourceVersions(rv, than);
  return c !== undefined && c <= 0;
}
