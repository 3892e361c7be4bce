// List + watch of the GameServers in one namespace, forever: pages through the initial list,
// watches from its resourceVersion, resumes after disconnects, relists when the version expired
// (410 Gone), backs off while the API server is unreachable.
import { KubernetesApiError, statusOf, type KubeHttp, type WatchEvent } from './kube-http.ts';
import type { GameServerObject } from './game-server-object.ts';
import type { StoreLogger } from './store-logger.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** Where a reflector delivers what it learns; P = a listed object as the sink keeps it. */
export interface ReflectorSink<P> {
  /** Converts one listed object, page by page, so that a page's raw objects can be freed at once. */
  prepare(obj: GameServerObject): P;
  /** Prepared items of a list that was abandoned (failed or stopped half-way). */
  discard(items: readonly P[]): void;
  /** The namespace's complete contents at `resourceVersion`; `relist` = not the first list. */
  replace(namespace: string, items: readonly P[], resourceVersion: string, relist: boolean): void;
  /** One watch event. */
  event(namespace: string, type: WatchEventType, obj: GameServerObject): void;
}

export interface ReflectorOptions<P> {
  /** The namespace listed and watched; '' = every namespace (a cluster-wide read, logged as "*"). */
  readonly namespace: string;
  readonly http: KubeHttp;
  readonly sink: ReflectorSink<P>;
  readonly logger: StoreLogger;
  /** A field selector on every list and watch, e.g. namespaces left out of a cluster-wide read. */
  readonly fieldSelector?: string;
  /** Items per list page; default 500. */
  readonly pageSize?: number;
  /** First retry delay after a failure; default 250 ms, doubling up to maxBackoffMs. */
  readonly minBackoffMs?: number;
  /** Default 10 s. */
  readonly maxBackoffMs?: number;
}

const GROUP_VERSION = '/apis/agones.dev/v1';

/** Keeps one namespace's GameServers flowing into a sink until stop(). */
export class NamespaceReflector<P> {
  readonly namespace: string;
  readonly #opts: ReflectorOptions<P>;
  readonly #path: string;
  readonly #stopController = new AbortController();
  #synced = false;
  #resolveSynced!: () => void;
  #loop: Promise<void> | undefined;
  /** Resolves after the first complete list. */
  readonly whenSynced: Promise<void>;

  constructor(opts: ReflectorOptions<P>) {
    this.namespace = opts.namespace === '' ? '*' : opts.namespace; // as logged
    this.#opts = opts;
    this.#path = opts.namespace === '' ? `${GROUP_VERSION}/gameservers` : `${GROUP_VERSION}/namespaces/${encodeURIComponent(opts.namespace)}/gameservers`;
    this.whenSynced = new Promise((resolve) => (this.#resolveSynced = resolve));
  }

  /** True once the first list has been delivered. */
  get synced(): boolean {
    return this.#synced;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopController.abort(new Error('reflector stopped'));
    await this.#loop;
  }

  get #stopped(): boolean {
    return this.#stopController.signal.aborted;
  }

  async #run(): Promise<void> {
    const log = this.#opts.logger;
    const minBackoff = this.#opts.minBackoffMs ?? 250;
    const maxBackoff = this.#opts.maxBackoffMs ?? 10_000;
    let backoff = minBackoff;
    let failures = 0;
    let resourceVersion = '';
    let listed = false;
    let phase: 'list' | 'watch' = 'list';
    const recovered = (): void => {
      if (failures === 0) return;
      log.info({ namespace: this.namespace, failures }, `GameServer ${phase} working again`);
      failures = 0;
      backoff = minBackoff;
    };
    while (!this.#stopped) {
      try {
        if (resourceVersion === '') {
          phase = 'list';
          resourceVersion = await this.#list(listed);
          recovered();
          if (!listed) {
            listed = true;
            this.#synced = true;
            this.#resolveSynced();
          }
        }
        const started = Date.now();
        phase = 'watch';
        const result = await this.#watchFrom(resourceVersion, recovered);
        if (this.#stopped) break;
        if (result.expired) {
          log.info({ namespace: this.namespace, resourceVersion }, 'GameServer watch expired (410 Gone); relisting');
          resourceVersion = '';
        } else {
          resourceVersion = result.resourceVersion;
        }
        if (result.events > 0 || Date.now() - started > 5_000 || result.expired) {
          backoff = minBackoff;
          continue;
        }
        // closed at once without news: do not spin on a server that keeps hanging up
        await this.#sleep(jitter(backoff));
        backoff = Math.min(maxBackoff, backoff * 2);
      } catch (err) {
        if (this.#stopped) break;
        if (err instanceof KubernetesApiError && err.status === 410) {
          log.info({ namespace: this.namespace }, 'GameServer list continuation expired; listing again');
          resourceVersion = '';
          continue;
        }
        failures++;
        const delay = jitter(backoff);
        log.warn(
          { namespace: this.namespace, err: describe(err), failures, retryInMs: Math.round(delay) },
          `GameServer ${phase === 'list' && !listed ? 'initial list' : phase} failed; retrying`,
        );
        await this.#sleep(delay);
        backoff = Math.min(maxBackoff, backoff * 2);
      }
    }
  }

  /** Lists every page; hands the result to the sink; returns the list's resourceVersion. */
  async #list(relist: boolean): Promise<string> {
    const sink = this.#opts.sink;
    const items: P[] = [];
    let cont = '';
    let resourceVersion = '';
    try {
      do {
        const query = new URLSearchParams({ limit: String(this.#opts.pageSize ?? 500) });
        if (this.#opts.fieldSelector) query.set('fieldSelector', this.#opts.fieldSelector);
        if (cont !== '') query.set('continue', cont);
        const res = await this.#opts.http.request('GET', `${this.#path}?${query}`, { signal: this.#stopController.signal, timeoutMs: 60_000 });
        if (res.status !== 200) {
          const s = statusOf(res);
          throw new KubernetesApiError(res.status, s.reason, `list GameServers in ${this.namespace}: ${s.message}`);
        }
        const list = res.body as { items?: GameServerObject[] | null; metadata?: { resourceVersion?: string; continue?: string } };
        for (const item of list.items ?? []) {
          item.metadata.namespace ??= this.namespace;
          items.push(sink.prepare(item));
        }
        cont = list.metadata?.continue ?? '';
        resourceVersion = list.metadata?.resourceVersion ?? '';
      } while (cont !== '' && !this.#stopped);
    } catch (err) {
      sink.discard(items);
      throw err;
    }
    if (this.#stopped) {
      sink.discard(items);
      return resourceVersion;
    }
    sink.replace(this.namespace, items, resourceVersion, relist);
    return resourceVersion;
  }

  /** One watch connection; resolves when it ends (the last resourceVersion seen, or expired). */
  async #watchFrom(resourceVersion: string, onOpen: () => void): Promise<{ resourceVersion: string; expired: boolean; events: number }> {
    let last = resourceVersion;
    let expired = false;
    let events = 0;
    let failure: KubernetesApiError | undefined;
    const onEvent = (event: WatchEvent): void => {
      const o = event.object as GameServerObject & { code?: number; message?: string; reason?: string };
      switch (event.type) {
        case 'ADDED':
        case 'MODIFIED':
        case 'DELETED':
          events++;
          o.metadata.namespace ??= this.namespace;
          try {
            this.#opts.sink.event(this.namespace, event.type, o);
          } catch (err) {
            this.#opts.logger.error({ namespace: this.namespace, err: describe(err) }, 'GameServer watch event handling failed');
          }
          last = o.metadata.resourceVersion ?? last;
          break;
        case 'BOOKMARK':
          last = o.metadata?.resourceVersion ?? last;
          break;
        case 'ERROR':
          if (o.code === 410) expired = true;
          else failure = new KubernetesApiError(o.code ?? 0, o.reason ?? '', `watch GameServers in ${this.namespace}: ${o.message ?? 'error event'}`);
          break;
        default:
          break;
      }
    };
    const query = new URLSearchParams({
      watch: '1',
      resourceVersion,
      allowWatchBookmarks: 'true',
      // the server ends the watch after this; client-go picks 5–10 min, likewise
      timeoutSeconds: String(300 + Math.floor(Math.random() * 300)),
    });
    if (this.#opts.fieldSelector) query.set('fieldSelector', this.#opts.fieldSelector);
    try {
      // bookmarks (which keep our resourceVersion fresh) come every 1–2 min on a quiet namespace:
      // a connection silent for longer is presumed dead and replaced
      await this.#opts.http.watch(`${this.#path}?${query}`, onEvent, { signal: this.#stopController.signal, idleTimeoutMs: 150_000, onOpen });
    } catch (err) {
      if (this.#stopped) return { resourceVersion: last, expired: false, events };
      if (err instanceof KubernetesApiError && err.status === 410) return { resourceVersion: last, expired: true, events };
      throw err;
    }
    if (expired) return { resourceVersion: last, expired: true, events };
    if (failure !== undefined) throw failure;
    return { resourceVersion: last, expired: false, events };
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#stopController.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', done);
        resolve();
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function jitter(ms: number): number {
  return ms * (0.8 + Math.random() * 0.4);
}

/** A short, loggable description of an error (with its cause, e.g. ECONNREFUSED). */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error && !err.message.includes(err.cause.message) ? `: ${err.cause.message}` : '';
  const code = (err as { code?: unknown }).code;
  return `${err.message}${cause}${typeof code === 'string' ? ` (${code})` : ''}`;
}
