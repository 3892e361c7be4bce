// What the ops port's status page shows: the routes this gateway takes per namespace, with what it
// observed on each endpoint (last attempts, latency, breaker) and what each target advertised.
// Fed off the request path by cheap appends; read only when someone loads /status.json.
// Nothing secret is kept or shown: no secret names, keys, certificates or request bodies.

/** One attempt on a remote endpoint, as the router reports it. */
export interface AttemptRecord {
  readonly target: string;
  readonly endpoint: string;
  readonly namespace: string;
  readonly outcome: string;
  /** gRPC status name ('' when no call was made). */
  readonly code: string;
  readonly latencyMs: number;
}

/** A target's last capacity advertisement, per namespace. */
export interface CapacityRecord {
  /** 'capacity' (it advertised), 'unimplemented' (agones-allocator) or 'error'. */
  readonly kind: 'capacity' | 'unimplemented' | 'error';
  readonly synced: boolean;
  readonly namespaces: Readonly<Record<string, { readonly ready: number; readonly allocated: number }>>;
  /** Why there is no advertisement (kind 'error'). */
  readonly message: string;
}

/** One route of a namespace (a GameServerAllocationPolicy), without its secret. */
export interface RouteInput {
  readonly policy: string;
  readonly clusterName: string;
  readonly priority: number;
  readonly weight: number;
  readonly targetNamespace: string;
  /** Empty for the local cluster. */
  readonly endpoints: readonly string[];
  /** The name the target goes by in attempts and metrics. */
  readonly target: string;
}

export interface StatusInputs {
  readonly namespaces: readonly string[];
  routes(namespace: string): Promise<{ routes: readonly RouteInput[]; problems: readonly string[] }>;
  breakerState(endpoint: string): string;
  localCapacity(namespace: string): { readonly ready: number; readonly allocated: number };
  readonly ready: boolean;
}

interface EndpointStats {
  attempts: number;
  failures: number;
  /** Exponentially weighted mean latency of calls made (skips excluded). */
  latencyMs: number | null;
  last: (AttemptRecord & { at: number })[];
}

/** healthy: breaker closed and the last call answered; failing: breaker not closed or the last call failed; idle: never called. */
export type EndpointHealth = 'healthy' | 'failing' | 'idle';

function health(breaker: string, s: EndpointStats | undefined): EndpointHealth {
  if (breaker !== 'closed') return 'failing';
  const last = s?.last.at(-1);
  if (!last) return 'idle';
  return last.outcome === 'allocated' || last.outcome === 'no-capacity' ? 'healthy' : 'failing';
}

const RECENT = 50;
const PER_ENDPOINT = 5;
const MAX_ENDPOINTS = 1_000;

export class StatusBoard {
  readonly #recent: (AttemptRecord & { at: number })[] = [];
  readonly #endpoints = new Map<string, EndpointStats>();
  readonly #capacity = new Map<string, CapacityRecord & { at: number }>();
  readonly #startedAt = Date.now();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  recordAttempt(a: AttemptRecord): void {
    const r = { ...a, at: this.#now() };
    this.#recent.push(r);
    if (this.#recent.length > RECENT) this.#recent.shift();
    let s = this.#endpoints.get(a.endpoint);
    if (!s) {
      if (this.#endpoints.size >= MAX_ENDPOINTS) this.#endpoints.delete(this.#endpoints.keys().next().value!);
      this.#endpoints.set(a.endpoint, (s = { attempts: 0, failures: 0, latencyMs: null, last: [] }));
    }
    s.attempts++;
    if (a.outcome !== 'allocated' && a.outcome !== 'no-capacity') s.failures++;
    if (a.code !== '') s.latencyMs = s.latencyMs === null ? a.latencyMs : s.latencyMs * 0.8 + a.latencyMs * 0.2;
    s.last.push(r);
    if (s.last.length > PER_ENDPOINT) s.last.shift();
  }

  /** Namespaces attempts were made in (shown even when no other source names them). */
  namespaces(): string[] {
    return [...new Set(this.#recent.map((a) => a.namespace))];
  }

  /** `targetKey`: the target's endpoints joined by ','. */
  recordCapacity(targetKey: string, c: CapacityRecord): void {
    if (!this.#capacity.has(targetKey) && this.#capacity.size >= MAX_ENDPOINTS) this.#capacity.delete(this.#capacity.keys().next().value!);
    this.#capacity.set(targetKey, { ...c, at: this.#now() });
  }

  /** The JSON the status page renders. */
  async snapshot(inputs: StatusInputs) {
    const now = this.#now();
    const ago = (at: number) => Math.max(0, now - at);
    const namespaces = [];
    for (const namespace of inputs.namespaces) {
      let routes: readonly RouteInput[] = [];
      let problems: readonly string[] = [];
      try {
        ({ routes, problems } = await inputs.routes(namespace));
      } catch (err) {
        problems = [`policies could not be read: ${err instanceof Error ? err.message : String(err)}`];
      }
      namespaces.push({
        namespace,
        local: inputs.localCapacity(namespace),
        problems,
        routes: [...routes]
          .sort((a, b) => a.priority - b.priority || b.weight - a.weight)
          .map((r) => {
            const cap = r.endpoints.length > 0 ? this.#capacity.get(r.endpoints.join(',')) : undefined;
            return {
              policy: r.policy,
              clusterName: r.clusterName,
              target: r.target,
              kind: r.endpoints.length === 0 ? ('local' as const) : ('remote' as const),
              priority: r.priority,
              weight: r.weight,
              targetNamespace: r.targetNamespace,
              advertised:
                r.endpoints.length === 0
                  ? { kind: 'local' as const, ...inputs.localCapacity(r.targetNamespace), synced: inputs.ready, message: '', ageMs: 0 }
                  : cap === undefined
                    ? null
                    : { kind: cap.kind, synced: cap.synced, ...(cap.namespaces[r.targetNamespace] ?? { ready: null, allocated: null }), message: cap.message, ageMs: ago(cap.at) },
              endpoints: r.endpoints.map((endpoint) => {
                const s = this.#endpoints.get(endpoint);
                return {
                  endpoint,
                  breaker: inputs.breakerState(endpoint),
                  latencyMs: s?.latencyMs == null ? null : Math.round(s.latencyMs * 10) / 10,
                  health: health(inputs.breakerState(endpoint), s),
                  attempts: s?.attempts ?? 0,
                  failures: s?.failures ?? 0,
                  last: (s?.last ?? []).map((a) => ({ outcome: a.outcome, code: a.code, latencyMs: Math.round(a.latencyMs * 10) / 10, ageMs: ago(a.at) })).reverse(),
                };
              }),
            };
          }),
      });
    }
    return {
      generatedAt: new Date(now).toISOString(),
      uptimeMs: now - this.#startedAt,
      ready: inputs.ready,
      namespaces,
      recentAttempts: this.#recent.map((a) => ({ target: a.target, endpoint: a.endpoint, namespace: a.namespace, outcome: a.outcome, code: a.code, latencyMs: Math.round(a.latencyMs * 10) / 10, ageMs: ago(a.at) })).reverse(),
    };
  }
}

export type StatusSnapshot = Awaited<ReturnType<StatusBoard['snapshot']>>;
