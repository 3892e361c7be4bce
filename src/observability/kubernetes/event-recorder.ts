// Writes GameServer Events to the API server off the request path. record() only counts the event
// into a bounded map (identical events aggregate into one with a count, as client-go's recorder
// does); a flusher writes them under a token-bucket write budget, a few at a time. Events that do
// not fit (map full) or fail are dropped and counted, never retried at the cost of allocations:
// the API server is the gateway's bottleneck, and an event is worth less than an allocation.
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeHttp, statusOf } from '../../cluster/kubernetes/kube-http.ts';
import { loadKubeConfig } from '../../cluster/kubernetes/kubernetes-store.ts';
import type { EventRecorder, GameServerEvent } from '../events.ts';

export type EventDropReason = 'queue-full' | 'write-failed' | 'shutdown';

export interface KubernetesEventRecorderOptions {
  readonly kubeConfig: KubeConfig | string;
  /**
   * The write budget: `qps` writes per second, plus `perEvent` of a write for each event recorded
   * (so events add at most that share to the API server's writes under load), up to `burst` saved.
   */
  readonly qps: number;
  readonly perEvent?: number;
  readonly burst: number;
  /** Distinct events waiting to be written; more are dropped. */
  readonly maxPending: number;
  /** Writes in flight at once. */
  readonly concurrency?: number;
  /** source.component of the events. */
  readonly component?: string;
  readonly onWritten?: (n: number) => void;
  readonly onDropped?: (reason: EventDropReason, n: number) => void;
  readonly logger?: { warn(obj: object, msg: string): void };
  readonly now?: () => number;
}

interface Pending {
  readonly event: GameServerEvent;
  count: number;
  first: number;
  last: number;
}

/** What was written for an aggregation key: repeats PATCH its count instead of creating another. */
interface Written {
  readonly name: string;
  count: number;
  readonly first: number;
}

const keyOf = (e: GameServerEvent): string => `${e.namespace}\u0000${e.name}\u0000${e.uid}\u0000${e.type}\u0000${e.reason}\u0000${e.message}`;
/** Aggregation memory (client-go keeps 4096 too). */
const WRITTEN_LIMIT = 4_096;
/** A repeat after this long is a new event, not a count on an old one (client-go: 10 min). */
const AGGREGATE_MS = 10 * 60_000;

export class KubernetesEventRecorder implements EventRecorder {
  readonly #o: KubernetesEventRecorderOptions;
  readonly #http: KubeHttp;
  readonly #pending = new Map<string, Pending>();
  readonly #written = new Map<string, Written>();
  readonly #now: () => number;
  #tokens: number;
  /** Budget earned by recorded events since the last refill. */
  #earned = 0;
  #refilledAt: number;
  #inFlight = 0;
  /** Keys being written: a repeat waits for its write, else it would create a second Event. */
  readonly #writing = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #lastWarnMs = 0;
  readonly #idle = new Set<() => void>();

  constructor(opts: KubernetesEventRecorderOptions) {
    this.#o = opts;
    this.#http = new KubeHttp(loadKubeConfig(opts.kubeConfig));
    this.#now = opts.now ?? Date.now;
    this.#tokens = opts.burst;
    this.#refilledAt = this.#now();
  }

  record(event: GameServerEvent): void {
    if (this.#closed) return;
    this.#earned += this.#o.perEvent ?? 0;
    const key = keyOf(event);
    const now = this.#now();
    const p = this.#pending.get(key);
    if (p) {
      p.count++;
      p.last = now;
      return;
    }
    if (this.#pending.size >= this.#o.maxPending) {
      this.#o.onDropped?.('queue-full', 1);
      return;
    }
    this.#pending.set(key, { event, count: 1, first: now, last: now });
    this.#schedule(0);
  }

  /** Resolves once nothing is pending or being written (tests, shutdown). */
  idle(): Promise<void> {
    if (this.#pending.size === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#pending.size > 0) this.#o.onDropped?.('shutdown', [...this.#pending.values()].reduce((a, p) => a + p.count, 0));
    this.#pending.clear();
    await this.idle();
    this.#http.close();
  }

  #wake(): void {
    const waiting = [...this.#idle];
    this.#idle.clear();
    for (const resolve of waiting) resolve();
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, delayMs);
    this.#timer.unref();
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#o.burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#o.qps + this.#earned);
    this.#earned = 0;
    this.#refilledAt = now;
  }

  #flush(): void {
    this.#refill();
    const concurrency = this.#o.concurrency ?? 4;
    for (const [key, p] of this.#pending) {
      if (this.#inFlight >= concurrency) break;
      if (this.#writing.has(key)) continue;
      if (this.#tokens < 1) {
        // Wait for the next token; what is pending keeps aggregating meanwhile.
        this.#schedule(Math.min(1_000, Math.ceil(((1 - this.#tokens) / this.#o.qps) * 1000)));
        return;
      }
      this.#tokens--;
      this.#pending.delete(key);
      this.#inFlight++;
      this.#writing.add(key);
      void this.#write(key, p).finally(() => {
        this.#inFlight--;
        this.#writing.delete(key);
        if (this.#pending.size > 0) this.#schedule(0);
        else if (this.#inFlight === 0) this.#wake();
      });
    }
  }

  async #write(key: string, p: Pending): Promise<void> {
    const e = p.event;
    const base = `/api/v1/namespaces/${encodeURIComponent(e.namespace)}/events`;
    const seen = this.#written.get(key);
    try {
      if (seen && p.first - seen.first < AGGREGATE_MS) {
        seen.count += p.count;
        const res = await this.#http.request('PATCH', `${base}/${encodeURIComponent(seen.name)}`, {
          body: { count: seen.count, lastTimestamp: new Date(p.last).toISOString() },
          timeoutMs: 5_000,
          contentType: 'application/merge-patch+json',
        });
        if (res.status === 200) return this.#o.onWritten?.(1);
        if (res.status !== 404) throw new Error(`HTTP ${res.status} ${statusOf(res).message}`);
        this.#written.delete(key); // the event expired (TTL): write a new one
      }
      const name = `${e.name}.${(BigInt(p.first) * 1_000_000n).toString(16)}${randomBytes(2).toString('hex')}`;
      const res = await this.#http.request('POST', base, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace: e.namespace },
          involvedObject: { apiVersion: 'agones.dev/v1', kind: 'GameServer', namespace: e.namespace, name: e.name, uid: e.uid, resourceVersion: e.resourceVersion },
          type: e.type,
          reason: e.reason,
          message: e.message,
          count: p.count,
          firstTimestamp: new Date(p.first).toISOString(),
          lastTimestamp: new Date(p.last).toISOString(),
          source: { component: this.#o.component ?? 'allocator-gateway' },
        },
        timeoutMs: 5_000,
      });
      if (res.status !== 201) throw new Error(`HTTP ${res.status} ${statusOf(res).message}`);
      if (this.#written.size >= WRITTEN_LIMIT) this.#written.delete(this.#written.keys().next().value!);
      this.#written.set(key, { name, count: p.count, first: p.first });
      this.#o.onWritten?.(1);
    } catch (err) {
      this.#o.onDropped?.('write-failed', p.count);
      const now = this.#now();
      if (now - this.#lastWarnMs >= 60_000) {
        this.#lastWarnMs = now;
        this.#o.logger?.warn({ err: err instanceof Error ? err.message : String(err), gameServer: `${e.namespace}/${e.name}`, reason: e.reason }, 'could not record a Kubernetes Event (dropped; warned at most once a minute)');
      }
    }
  }
}
