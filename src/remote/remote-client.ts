// Calls remote allocators (agones-allocator or another gateway) for one target: endpoints
// tried with a rotating start, each through its circuit breaker, each attempt bounded by the
// route's budget, and fallback only where it cannot allocate twice.
import * as grpc from '@grpc/grpc-js';
import { startSpan, traceHeaders } from '../observability/tracing.ts';
import type { WireAllocationRequest, WireAllocationResponse } from '../allocation/wire.ts';
import { ChannelPool, waitConnected, type RemoteStub, type RemoteTls } from './channel-pool.ts';
import { EndpointLatency } from './endpoint-latency.ts';
import { BreakerOpen, EndpointBreakers, type BreakerCause, type BreakerSettings, type BreakerState } from './endpoint-breakers.ts';
import { probeTls, type TlsProblem } from './tls-probe.ts';
import type { WireGetCapacityResponse } from './gateway-proto.ts';
import { errorInfoOf, type ErrorInfo } from '../protocol/error-info.ts';
import { classify, codeName, maybeSent, type Outcome } from './outcome.ts';

/** A remote destination: one policy's endpoints and TLS. */
export interface RemoteTarget {
  /** Name in reports and metrics. */
  readonly name: string;
  /** Normalised host:port endpoints. */
  readonly endpoints: readonly string[];
  readonly tls: RemoteTls | null;
  /** Names the client credentials (e.g. the Secret namespace/name): channels, breakers and capacity are kept per endpoint and credentials. */
  readonly credentials: string;
  /** PEM CA bundle of the remote's server certificate; "" = none. */
  readonly serverCa: string;
}

/** The route's deadline budget as the remote client uses it. */
export interface AttemptBudget {
  remainingMs(): number;
  forAttempt(capMs: number, minUsefulMs?: number): number | null;
}

export interface RemoteCallOptions {
  readonly budget: AttemptBudget;
  /** Forwarded as `idempotency-key` metadata (a gateway remote dedups repeats by it). */
  readonly idempotencyKey: string | null;
  readonly reqId: string;
  readonly signal: AbortSignal;
  /** Start with this endpoint (a repeat goes where the lost attempt went first). */
  readonly first?: string;
}

/**
 * Outcome of one attempt, plus the ways an attempt can end without a remote status: an open
 * breaker, too little time left to start, or an endpoint whose observed latency exceeds what is left.
 */
export type AttemptOutcome = Outcome | 'breaker-open' | 'no-budget' | 'too-slow';

export interface RemoteAttempt {
  readonly endpoint: string;
  readonly outcome: AttemptOutcome;
  /** Status code name ("UNAVAILABLE", "422"), or "" when no call was made. */
  readonly code: string;
  readonly message: string;
  readonly latencyMs: number;
  /** The request may have reached the remote. */
  readonly sent: boolean;
  /** Sent, and the reply was lost: the remote may have allocated. */
  readonly ambiguous: boolean;
  /** breaker-open: what opened it. */
  readonly openedBy?: BreakerCause;
  /** A connection that failed because of TLS, and how. */
  readonly tls?: TlsProblem;
}

export type RemoteResult =
  | { readonly ok: true; readonly response: WireAllocationResponse; readonly endpoint: string; readonly attempts: readonly RemoteAttempt[] }
  | { readonly ok: false; readonly attempts: readonly RemoteAttempt[] };

/** A remote's GetCapacity answer, or why there is none. */
export type CapacityAnswer =
  | { readonly kind: 'capacity'; readonly response: WireGetCapacityResponse; readonly endpoint: string }
  | { readonly kind: 'unimplemented' }
  | { readonly kind: 'error'; readonly message: string };

export interface RemoteClientOptions {
  /** Cap on one attempt (connect + call). */
  readonly attemptTimeoutMs: number;
  /** Cap on waiting for a connection before an attempt (a dead or black-holed remote). */
  readonly connectTimeoutMs: number;
  /** No attempt starts with less than this left in the budget. */
  readonly minAttemptMs: number;
  readonly breaker: BreakerSettings;
  readonly onBreakerState?: (target: string, endpoint: string, state: BreakerState, openedBy: BreakerCause | null) => void;
  readonly onChannelRebuild?: (endpoint: string) => void;
}

interface CallError {
  code: number;
  details: string;
  info?: ErrorInfo | null;
  tls?: TlsProblem;
}

/** The breaker, channel and latency key of an endpoint dialled with some credentials. */
const keyOf = (endpoint: string, credentials: string): string => `${endpoint}\u0000${credentials}`;

export class RemoteClient {
  readonly #opts: RemoteClientOptions;
  readonly #pool: ChannelPool;
  readonly #breakers: EndpointBreakers;
  readonly #rotation = new Map<string, number>();
  readonly #latency = new EndpointLatency();
  readonly #targetOf = new Map<string, { target: string; endpoint: string }>();
  /** Recent TLS probe results per key, so a failing endpoint is probed at most every few seconds. */
  readonly #probed = new Map<string, { at: number; problem: TlsProblem | null; detail: string }>();

  constructor(opts: RemoteClientOptions) {
    this.#opts = opts;
    this.#pool = new ChannelPool(opts.onChannelRebuild ? { onRebuild: opts.onChannelRebuild } : {});
    this.#breakers = new EndpointBreakers(opts.breaker, (key, state, openedBy) => {
      const t = this.#targetOf.get(key);
      opts.onBreakerState?.(t?.target ?? '', t?.endpoint ?? key.slice(0, key.indexOf('\u0000')), state, openedBy);
    });
  }

  /** Endpoints of a target in the order the next request tries them (rotating start). */
  order(target: RemoteTarget, advance = false): string[] {
    const key = target.endpoints.join(',');
    const n = this.#rotation.get(key) ?? 0;
    if (advance) this.#rotation.set(key, (n + 1) % Math.max(1, target.endpoints.length));
    const start = n % Math.max(1, target.endpoints.length);
    return [...target.endpoints.slice(start), ...target.endpoints.slice(0, start)];
  }

  breakerState(target: RemoteTarget, endpoint: string): BreakerState {
    return this.#breakers.state(keyOf(endpoint, target.credentials));
  }

  /** An endpoint's breaker over every set of client credentials it is dialled with: the worst one (status page). */
  endpointBreakerState(endpoint: string): BreakerState {
    return this.#breakers.worstState(keyOf(endpoint, ''));
  }

  /** Starts connecting to a target's endpoints (e.g. when policies load). */
  warm(target: RemoteTarget): void {
    for (const e of target.endpoints) this.#pool.warm(e, target.credentials, target.tls, target.serverCa);
  }

  /** One allocation on a target; never throws. */
  async allocate(target: RemoteTarget, request: WireAllocationRequest, opts: RemoteCallOptions): Promise<RemoteResult> {
    const attempts: RemoteAttempt[] = [];
    let order = this.order(target, true);
    if (opts.first !== undefined && order.includes(opts.first)) order = [opts.first, ...order.filter((e) => e !== opts.first)];
    for (const endpoint of order) {
      const key = keyOf(endpoint, target.credentials);
      this.#targetOf.set(key, { target: target.name, endpoint });
      if (this.#targetOf.size > 4_096) this.#targetOf.clear();
      if (opts.signal.aborted) break;
      const deadline = opts.budget.forAttempt(this.#opts.attemptTimeoutMs, this.#opts.minAttemptMs);
      if (deadline === null) {
        attempts.push({ endpoint, outcome: 'no-budget', code: '', message: `less than ${this.#opts.minAttemptMs} ms left of the caller's deadline; not attempted`, latencyMs: 0, sent: false, ambiguous: false });
        break;
      }
      // An attempt that would most likely outlive the caller's deadline is not started: a remote
      // that allocates after the caller has gone leaves a GameServer nobody was told about.
      const expected = this.#latency.expectedMs(endpoint);
      const left = opts.budget.remainingMs();
      if (expected !== null && expected > left) {
        attempts.push({ endpoint, outcome: 'too-slow', code: '', message: `answers in about ${Math.round(expected)} ms (recent calls); ${Math.round(left)} ms of the caller's deadline were left`, latencyMs: 0, sent: false, ambiguous: false });
        continue;
      }
      const started = performance.now();
      const stub = this.#pool.get(endpoint, target.credentials, target.tls, target.serverCa);
      // One span per attempt; its context goes to the remote (traceparent), whose spans continue the trace.
      const span = startSpan('remote attempt', { 'allocator_gateway.target': target.name, 'allocator_gateway.endpoint': endpoint, 'rpc.system': 'grpc', 'rpc.method': 'Allocate' }, { role: 'client' });
      let attempt: RemoteAttempt;
      const issued = { value: false };
      try {
        const response = await span.run(() => this.#breakers.fire(key, () => this.#call(stub, endpoint, target, request, deadline, opts, issued)));
        span.end({ 'allocator_gateway.outcome': 'allocated', 'rpc.grpc.status_code': 0 });
        this.#latency.observe(endpoint, performance.now() - started);
        return { ok: true, response, endpoint, attempts: [...attempts, { endpoint, outcome: 'allocated', code: 'OK', message: '', latencyMs: performance.now() - started, sent: true, ambiguous: false }] };
      } catch (err) {
        const latencyMs = performance.now() - started;
        if (err instanceof BreakerOpen) {
          attempt = { endpoint, outcome: 'breaker-open', code: '', message: err.message, latencyMs, sent: false, ambiguous: false, openedBy: err.openedBy };
        } else {
          const e = err as CallError;
          const code = typeof e.code === 'number' ? e.code : grpc.status.UNKNOWN;
          const details = typeof e.details === 'string' ? e.details : String(err);
          const c = classify({ code, details, info: e.info ?? null });
          const tlsField = e.tls !== undefined ? { tls: e.tls } : {};
          // Our caller left (deadline or cancel) after the call went out: the remote may still allocate.
          if (opts.signal.aborted) attempt = { endpoint, outcome: 'cancelled', code: codeName(code), message: details, latencyMs, sent: issued.value, ambiguous: issued.value };
          else attempt = { endpoint, outcome: c.outcome, code: codeName(code), message: details, latencyMs, sent: c.sent && issued.value, ambiguous: c.outcome === 'failed' && c.ambiguous && issued.value, ...tlsField };
        }
      }
      span.end({ 'allocator_gateway.outcome': attempt.ambiguous ? 'ambiguous' : attempt.outcome, 'allocator_gateway.code': attempt.code }, attempt.outcome === 'failed' ? attempt.message : undefined);
      // Cut short or answered, the call took at least this long.
      if (issued.value) this.#latency.observe(endpoint, attempt.latencyMs);
      attempts.push(attempt);
      // The cluster behind every endpoint of a target is the same: its answer is the target's
      // (a refusal is one replica's, so another endpoint may still serve).
      if (attempt.outcome !== 'failed' && attempt.outcome !== 'breaker-open' && attempt.outcome !== 'refused') break;
      // A lost reply may hide an allocation: the router decides what may follow.
      if (attempt.ambiguous) break;
    }
    return { ok: false, attempts };
  }

  /** After a failed connection: whether TLS was the reason (one probe handshake, at most every 5 s per key). */
  async #tlsProblem(endpoint: string, target: RemoteTarget, deadline: number): Promise<{ problem: TlsProblem | null; detail: string }> {
    const key = keyOf(endpoint, target.credentials);
    const cached = this.#probed.get(key);
    if (cached && Date.now() - cached.at < 5_000) return cached;
    const timeoutMs = Math.min(500, deadline - Date.now());
    if (timeoutMs < 50) return { problem: null, detail: '' };
    let detail = '';
    const problem = await probeTls(endpoint, target.tls, target.serverCa, timeoutMs, (m) => (detail = m));
    const r = { at: Date.now(), problem, detail };
    this.#probed.set(key, r);
    if (this.#probed.size > 4_096) this.#probed.clear();
    return r;
  }

  #call(stub: RemoteStub, endpoint: string, target: RemoteTarget, request: WireAllocationRequest, deadline: number, opts: RemoteCallOptions, issued: { value: boolean }): Promise<WireAllocationResponse> {
    return (async () => {
      try {
        return await this.#send(stub, endpoint, request, deadline, opts, issued);
      } catch (err) {
        const e = err as CallError;
        if (e.code !== grpc.status.UNAVAILABLE || issued.value && maybeSent(e.code, e.details) || opts.signal.aborted) throw err;
        const { problem, detail } = await this.#tlsProblem(endpoint, target, deadline);
        if (problem === null) throw err;
        throw { ...e, details: `${e.details} (TLS: ${problem}${detail ? `: ${detail}` : ''})`, tls: problem } satisfies CallError;
      }
    })();
  }

  #send(stub: RemoteStub, endpoint: string, request: WireAllocationRequest, deadline: number, opts: RemoteCallOptions, issued: { value: boolean }): Promise<WireAllocationResponse> {
    return (async () => {
      const state = stub.getChannel().getConnectivityState(true);
      if (state === grpc.connectivityState.IDLE || state === grpc.connectivityState.CONNECTING) {
        const connectBy = Math.min(deadline, Date.now() + this.#opts.connectTimeoutMs);
        if (!(await waitConnected(stub, connectBy))) {
          if (opts.signal.aborted) throw { code: grpc.status.CANCELLED, details: 'the caller cancelled the request' } satisfies CallError;
          throw { code: grpc.status.UNAVAILABLE, details: `No connection established to ${endpoint} within ${Math.max(0, Math.round(connectBy - (deadline - this.#opts.attemptTimeoutMs)))} ms (connect timeout ${this.#opts.connectTimeoutMs} ms)` } satisfies CallError;
        }
      }
      const md = new grpc.Metadata();
      md.set('x-request-id', opts.reqId);
      if (opts.idempotencyKey !== null) md.set('idempotency-key', opts.idempotencyKey);
      for (const [k, v] of Object.entries(traceHeaders())) md.set(k, v);
      if (opts.signal.aborted) throw { code: grpc.status.CANCELLED, details: 'the caller cancelled the request' } satisfies CallError;
      issued.value = true;
      return await new Promise<WireAllocationResponse>((resolve, reject) => {
        const call = stub.Allocate(request, md, { deadline }, (err, res) => {
          opts.signal.removeEventListener('abort', cancel);
          if (err) reject({ code: err.code, details: err.details, info: errorInfoOf(err) } satisfies CallError);
          else resolve(res as WireAllocationResponse);
        });
        const cancel = (): void => call.cancel();
        opts.signal.addEventListener('abort', cancel, { once: true });
      });
    })();
  }

  /** Asks a target what it can serve (GatewayService.GetCapacity); never throws. */
  async capacity(target: RemoteTarget, namespaces: readonly string[], timeoutMs: number): Promise<CapacityAnswer> {
    let last = 'no endpoint';
    for (const endpoint of this.order(target)) {
      if (this.#breakers.state(keyOf(endpoint, target.credentials)) === 'open') {
        last = `circuit breaker for ${endpoint} is open`;
        continue;
      }
      const stub = this.#pool.get(endpoint, target.credentials, target.tls, target.serverCa);
      try {
        const response = await new Promise<WireGetCapacityResponse>((resolve, reject) => {
          stub.GetCapacity({ namespaces: [...namespaces] }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
            err ? reject(err) : resolve(res as WireGetCapacityResponse),
          );
        });
        return { kind: 'capacity', response, endpoint };
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.UNIMPLEMENTED) return { kind: 'unimplemented' };
        last = `${endpoint}: ${codeName(e.code)} ${e.details}`;
      }
    }
    return { kind: 'error', message: last };
  }

  close(): void {
    this.#breakers.close();
    this.#pool.close();
  }
}
