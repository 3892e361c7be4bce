// Routes by GameServerAllocationPolicy: local first where the policies say so, then remote
// allocators, tier by tier, inside one deadline budget. Never two targets at once; after a
// lost reply (the remote may have allocated) no fallback unless an idempotency key dedups it.
import { AllocationError, type AttemptReport, type Reason } from '../allocation/errors.ts';
import { forwardedRequestToWire, responseFromWire } from '../allocation/to-proto.ts';
import type { Allocation, AllocationRequest } from '../allocation/types.ts';
import { abortError, allocationOf, type Engine } from '../engine/engine.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { StatusBoard } from '../observability/status-board.ts';
import { inSpan } from '../observability/tracing.ts';
import type { RemoteAttempt, RemoteClient, RemoteTarget } from '../remote/remote-client.ts';
import { Budget } from './budget.ts';
import type { CapacityCache } from './capacity-cache.ts';
import { requestFingerprint } from '../allocation/request-fingerprint.ts';
import { CLUSTER_ANNOTATION, IDEMPOTENCY_ANNOTATION, IDEMPOTENCY_REQUEST_ANNOTATION, REQUEST_ID_ANNOTATION, idempotencyHash, type IdempotencyLedger } from './idempotency.ts';
import { planRoute, seededRandom, type PlanTarget, type RoutePlan } from './plan.ts';
import { selectPolicies } from './policy.ts';
import { SecretProblem, type PolicySource } from './policy-source.ts';
import type { RouteContext, Router } from './router.ts';

export interface PolicyRouterOptions {
  readonly engine: Engine;
  readonly policies: PolicySource;
  readonly remote: RemoteClient;
  readonly capacity: CapacityCache;
  readonly ledger: IdempotencyLedger;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, 'remoteAttempts' | 'remoteSeconds'>;
  /** Told each remote attempt (the ops status page). */
  readonly statusBoard?: Pick<StatusBoard, 'recordAttempt'>;
  /** Longest wait for a first capacity advertisement of a remote. */
  readonly capacityWaitMs: number;
  /** Poll interval while another replica serves the same idempotency key. */
  readonly idempotencyPollMs?: number;
  /**
   * How long a route may still be writing after the caller's deadline (a started GameServer
   * write runs to a known outcome or is reported ambiguous); a key's claim is held this much
   * longer, so no other replica takes it over while that write may still land. Default 5 s.
   */
  readonly claimGraceMs?: number;
  /**
   * Whether the caller may act in a target's namespace (a policy may send requests to another
   * namespace than the request's). Absent = any.
   */
  readonly mayUse?: (identity: string | null, namespace: string) => boolean;
  /**
   * Whether the gateway keeps state (idempotency records) for a namespace: the ones it serves
   * GameServers or policies in. Keys in other namespaces are not recorded (nothing can be allocated
   * there), so callers cannot make it write Leases into namespaces of their choosing. Absent = all.
   */
  readonly keepsState?: (namespace: string) => boolean;
}

/** A route that would be or was taken, step by step (GatewayService.ExplainRoute). */
export interface RouteExplanation {
  readonly multiCluster: boolean;
  readonly steps: readonly {
    readonly policy: string;
    readonly clusterName: string;
    readonly priority: number;
    readonly weight: number;
    readonly kind: 'local' | 'remote';
    readonly namespace: string;
    readonly endpoints: readonly string[];
    readonly decision: 'try' | 'skip';
    readonly reason: string;
  }[];
  readonly problems: readonly string[];
  readonly randomized: boolean;
}

type Step =
  | { readonly done: Allocation }
  | { readonly stop: AllocationError }
  | { readonly next: true };

/** Prefix of idempotency keys this gateway forwards (already hashed with the caller's identity). */
const FORWARDED_KEY_PREFIX = 'gw1-';

export class PolicyRouter implements Router {
  readonly #o: PolicyRouterOptions;
  readonly #inFlight = new Map<string, { readonly fingerprint: string; readonly route: Promise<Allocation> }>();
  readonly #warned = new Map<string, number>();

  constructor(opts: PolicyRouterOptions) {
    this.#o = opts;
  }

  async allocate(req: AllocationRequest, ctx: RouteContext): Promise<Allocation> {
    const budget = new Budget(ctx.deadlineMs);
    if (ctx.idempotencyKey === null || this.#o.keepsState?.(req.namespace) === false) return await this.#route(req, ctx, budget, null, '');
    const hash = idempotencyHash(req.namespace, ctx.identity, ctx.idempotencyKey);
    const fingerprint = requestFingerprint(req);
    // Same key on this replica at once: share one route, if it is the same request.
    const id = `${req.namespace}/${hash}`;
    const running = this.#inFlight.get(id);
    if (running) {
      sameRequest(running.fingerprint, fingerprint);
      try {
        return await running.route;
      } catch (err) {
        // The first caller left (its deadline or cancel ended that route, which released what it
        // held): a repeat still waiting is served on its own.
        const gone = err instanceof AllocationError && (err.reason === 'CANCELLED' || err.reason === 'DEADLINE_EXCEEDED') && err.metadata.ambiguous !== 'true';
        if (!gone || ctx.signal.aborted || this.#inFlight.has(id)) throw err;
      }
    }
    const route = this.#keyed(req, ctx, budget, hash, fingerprint).finally(() => this.#inFlight.delete(id));
    this.#inFlight.set(id, { fingerprint, route });
    return await route;
  }

  async #keyed(req: AllocationRequest, ctx: RouteContext, budget: Budget, hash: string, fingerprint: string): Promise<Allocation> {
    const { engine, ledger, logger } = this.#o;
    // A GameServer of this cluster already carries the key (also one whose write was reported
    // ambiguous and has landed since: checked on every poll, as the watch may deliver it any time).
    const carried = (): Allocation | undefined => {
      const gs = engine.index.findByAnnotation(IDEMPOTENCY_ANNOTATION, req.namespace, hash);
      if (gs?.state !== 'Allocated') return undefined;
      sameRequest(gs.annotations[IDEMPOTENCY_REQUEST_ANNOTATION], fingerprint);
      return allocationOf(gs, 'local');
    };
    for (;;) {
      const local = carried();
      if (local) return local;
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      let claim;
      try {
        claim = await inSpan('idempotency claim', { 'allocator_gateway.namespace': req.namespace }, () => ledger.claim(req.namespace, hash, budget.remainingMs() + (this.#o.claimGraceMs ?? 5_000), ctx.signal, fingerprint));
      } catch (err) {
        if (ctx.signal.aborted) throw abortError(ctx.signal);
        logger.error({ reqId: ctx.reqId, namespace: req.namespace, err: (err as Error).message }, 'idempotency ledger unavailable');
        throw new AllocationError('NOT_READY', 'the idempotency record could not be read; retry', { cause: err });
      }
      if (claim.kind !== 'won') sameRequest(claim.fingerprint, fingerprint);
      if (claim.kind === 'done') {
        logger.info({ reqId: ctx.reqId, namespace: req.namespace, gameServer: claim.allocation.gameServerName, source: claim.allocation.source }, 'idempotent repeat: returning the earlier allocation');
        return claim.allocation;
      }
      if (claim.kind === 'won') break;
      // Another replica is serving this key: wait for its result rather than allocate twice.
      if (budget.remainingMs() < (this.#o.idempotencyPollMs ?? 50) * 2) {
        logger.debug({ reqId: ctx.reqId, namespace: req.namespace, holder: claim.holder }, 'idempotency key held by another request');
        throw new AllocationError('IDEMPOTENCY_CONFLICT', 'a request with this idempotency key is still being served; retry to get its result');
      }
      await new Promise((r) => setTimeout(r, this.#o.idempotencyPollMs ?? 50));
    }
    // The claim's outcome is recorded without holding the caller's answer: a stalled Lease write
    // must not turn a made allocation into DEADLINE_EXCEEDED. Meanwhile a repeat finds a local
    // GameServer by its annotation, or takes this replica's Lease back (see the ledger).
    try {
      const allocation = carried() ?? (await this.#route(req, ctx, budget, hash, fingerprint));
      void ledger.complete(req.namespace, hash, allocation).catch((err: unknown) =>
        logger.error({ reqId: ctx.reqId, namespace: req.namespace, err: (err as Error).message }, 'could not record the idempotency result; a repeat on another replica may wait for the claim to lapse'),
      );
      return allocation;
    } catch (err) {
      // Only a failure known to have allocated nothing gives the claim up. An ambiguous one (or an
      // unclassified one) keeps it: a retry must not allocate again before the holder's time is up.
      if (err instanceof AllocationError && err.metadata.ambiguous !== 'true') {
        void ledger.release(req.namespace, hash).catch(() => {});
      }
      throw err;
    }
  }

  async #plan(req: AllocationRequest, signal: AbortSignal, hash: string | null): Promise<{ plan: RoutePlan; problems: string[] }> {
    const ns = await this.#o.policies.policies(req.namespace, signal);
    const problems = ns.problems.map((p) => `policy ${p.namespace}/${p.name}: ${p.problems.join('; ')}`);
    const selected = selectPolicies(ns.policies, req.multiClusterSetting.policySelector);
    if (selected.length === 0) {
      const why = ns.unserved
        ? `multi-cluster allocation is not served in namespace ${req.namespace}`
        : ns.policies.length === 0 ? `namespace ${req.namespace} has no usable GameServerAllocationPolicy` : 'policySelector matches none of the namespace\'s policies';
      // The problems themselves (file paths, secret names) are logged by the policy source.
      throw new AllocationError('NO_POLICY', `no multi-cluster allocation policy is specified (${why})${problems.length > 0 ? `; ${problems.length} unusable ${problems.length === 1 ? 'policy was' : 'policies were'} ignored (see the gateway log)` : ''}`, {
        metadata: { namespace: req.namespace },
      });
    }
    return { plan: planRoute(selected, hash === null ? Math.random : seededRandom(hash)), problems };
  }

  async #route(req: AllocationRequest, ctx: RouteContext, budget: Budget, hash: string | null, fingerprint: string): Promise<Allocation> {
    const annotations: Record<string, string> = hash === null ? {} : { [IDEMPOTENCY_ANNOTATION]: hash, [IDEMPOTENCY_REQUEST_ANNOTATION]: fingerprint };
    if (!req.multiClusterSetting.enabled) {
      return await this.#o.engine.allocate(req, { signal: ctx.signal, annotations });
    }
    const { plan } = await this.#plan(req, ctx.signal, hash);
    const attempts: AttemptReport[] = [];
    const tried = new Set<string>();
    const requestId = requestIdOf(req, ctx);
    for (const target of plan.targets) {
      const step = await this.#step(target, req, ctx, budget, hash, { ...annotations, [REQUEST_ID_ANNOTATION]: requestId }, attempts, tried, requestId);
      if ('done' in step) return step.done;
      if ('stop' in step) throw step.stop;
      if (ctx.signal.aborted) throw withAttempts(abortError(ctx.signal), attempts);
    }
    throw finalError(attempts);
  }

  async #step(
    target: PlanTarget,
    req: AllocationRequest,
    ctx: RouteContext,
    budget: Budget,
    hash: string | null,
    annotations: Record<string, string>,
    attempts: AttemptReport[],
    tried: Set<string>,
    requestId: string,
  ): Promise<Step> {
    const { logger, metrics } = this.#o;
    const p = target.policy;
    const ns = p.targetNamespace;
    // Where a target that was not called is said to be: 'local', or its endpoints.
    const where = target.kind === 'local' ? 'local' : target.endpoints.join(',');
    const report = (endpoint: string, outcome: string, code: string, message: string): void => {
      attempts.push({ target: target.name, endpoint, outcome, code, message });
    };
    if (target.problem !== null) {
      this.#warnOnce(target.problem, { reqId: ctx.reqId, namespace: req.namespace, policy: p.name, target: target.name });
      report(where, 'misconfigured', '', target.problem);
      return { next: true };
    }
    const destination = target.kind === 'local' ? `local|${ns}` : `${[...target.endpoints].sort().join(',')}|${ns}`;
    if (tried.has(destination)) {
      report(where, 'skipped', '', `policy ${p.name}: same destination as an earlier target of this route`);
      return { next: true };
    }
    tried.add(destination);
    if (this.#o.mayUse && !this.#o.mayUse(ctx.identity, ns)) {
      report(where, 'forbidden', 'PERMISSION_DENIED', `policy ${p.name}: the caller may not use namespace ${ns}`);
      return { next: true };
    }

    if (target.kind === 'local') {
      const started = performance.now();
      const extra = p.clusterName !== '' ? { ...annotations, [CLUSTER_ANNOTATION]: p.clusterName } : annotations;
      try {
        const a = await this.#o.engine.allocate({ ...req, namespace: ns }, { signal: ctx.signal, annotations: extra });
        logger.debug({ reqId: ctx.reqId, namespace: ns, target: target.name, endpoint: 'local', outcome: 'allocated', latencyMs: performance.now() - started }, 'target served');
        return { done: a };
      } catch (err) {
        if (!(err instanceof AllocationError)) throw err;
        if (err.reason === 'DEADLINE_EXCEEDED' || err.reason === 'CANCELLED') return { stop: withAttempts(err, attempts) };
        // A local write whose outcome is unknown may have allocated: trying another cluster could
        // allocate twice for one request, key or not (the key deduplicates only in this cluster).
        if (err.metadata.ambiguous === 'true') {
          report('local', 'ambiguous', err.reason, err.message);
          return { stop: withAttempts(err, attempts) };
        }
        const outcome = err.reason === 'NO_GAME_SERVER' ? 'no-capacity' : 'failed';
        report('local', outcome, err.reason, err.message);
        logger.debug({ reqId: ctx.reqId, namespace: ns, target: target.name, endpoint: 'local', outcome, latencyMs: performance.now() - started }, 'target did not serve');
        return { next: true };
      }
    }

    let tls = null;
    if (p.secretName === '') {
      const problem = `policy ${p.namespace}/${p.name}: connectionInfo.secretName is required for a remote target (the client certificate)`;
      this.#warnOnce(problem, { policy: p.name, target: target.name });
      report(where, 'misconfigured', '', problem);
      return { next: true };
    }
    try {
      tls = await this.#o.policies.secret(p.namespace, p.secretName, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) return { stop: withAttempts(abortError(ctx.signal), attempts) };
      const problem = `policy ${p.namespace}/${p.name}: ${err instanceof SecretProblem ? err.message : String(err)}`;
      this.#warnOnce(problem, { policy: p.name, target: target.name });
      report(where, 'misconfigured', '', problem);
      return { next: true };
    }
    const remote: RemoteTarget = { name: target.name, endpoints: target.endpoints, tls, credentials: `${p.namespace}/${p.secretName}`, serverCa: p.serverCa };
    const decision = await this.#o.capacity.decide(remote, ns, req, Math.min(this.#o.capacityWaitMs, budget.remainingMs() / 4));
    if (decision.kind === 'skip') {
      report(where, 'skipped-no-capacity', '', decision.reason);
      metrics.remoteAttempts.inc({ target: target.name, endpoint: where, outcome: 'skipped-no-capacity' });
      return { next: true };
    }
    const forwardedKey = hash === null ? null : `${FORWARDED_KEY_PREFIX}${hash}`;
    const wire = forwardedRequestToWire(withRequestId(req, requestId), ns);
    const call = async (first?: string) => {
      const r = await this.#o.remote.allocate(remote, wire, { budget, idempotencyKey: forwardedKey, reqId: ctx.reqId, signal: ctx.signal, ...(first !== undefined ? { first } : {}) });
      for (const a of r.attempts) this.#observe(target, remote, ns, ctx, a);
      // Our own words only: the remote's text is in the log line above.
      for (const a of r.attempts) if (a.outcome !== 'allocated') attempts.push(attemptReport(target.name, a));
      return r;
    };
    let result = await call();
    const lost = result.ok ? undefined : result.attempts.at(-1);
    if (lost?.ambiguous && forwardedKey !== null && this.#o.capacity.honoursIdempotencyKeys(remote) && !ctx.signal.aborted) {
      // A gateway dedups by key: the repeat, to the same endpoint first, returns what the lost
      // attempt allocated, or proves it allocated nothing (then the route may go on).
      result = await call(lost.endpoint);
      const again = result.ok ? undefined : result.attempts.at(-1);
      if (again && !settled(again)) return { stop: ambiguousError(target.name, lost.endpoint, requestId, ctx, budget, attempts) };
    }
    if (result.ok) {
      const allocation = responseFromWire(result.response, ns, result.endpoint);
      if (p.clusterName === '') return { done: allocation };
      return {
        done: { ...allocation, metadata: { labels: allocation.metadata.labels, annotations: { ...allocation.metadata.annotations, [CLUSTER_ANNOTATION]: p.clusterName } } },
      };
    }
    const last = result.attempts.at(-1);
    if (last?.outcome === 'no-capacity') this.#o.capacity.noteNoCapacity(remote, ns, req);
    // Sent and unanswered: the remote may have allocated. Another cluster could allocate a second
    // GameServer, so the route ends here and the caller is told so, keyed or not.
    if (last?.ambiguous) return { stop: ambiguousError(target.name, last.endpoint, requestId, ctx, budget, attempts) };
    if (last?.outcome === 'cancelled' || ctx.signal.aborted) return { stop: withAttempts(abortError(ctx.signal), attempts) };
    if (last?.outcome === 'no-budget' || budget.remainingMs() === 0) {
      return { stop: new AllocationError('DEADLINE_EXCEEDED', `the caller's deadline left no time for ${target.name} or later targets`, { attempts }) };
    }
    return { next: true };
  }

  #observe(target: PlanTarget, remoteTarget: RemoteTarget, namespace: string, ctx: RouteContext, a: RemoteAttempt): void {
    const { logger, metrics, remote } = this.#o;
    const outcome = a.ambiguous ? 'ambiguous' : a.outcome;
    metrics.remoteAttempts.inc({ target: target.name, endpoint: a.endpoint, outcome });
    this.#o.statusBoard?.recordAttempt({ target: target.name, endpoint: a.endpoint, namespace, outcome, code: a.code, latencyMs: a.latencyMs });
    if (a.outcome !== 'breaker-open' && a.outcome !== 'no-budget') metrics.remoteSeconds.observe({ target: target.name, endpoint: a.endpoint }, a.latencyMs / 1000);
    const line = {
      reqId: ctx.reqId, namespace, target: target.name, endpoint: a.endpoint, outcome, code: a.code,
      latencyMs: Math.round(a.latencyMs * 10) / 10, breaker: remote.breakerState(remoteTarget, a.endpoint),
      ...(a.openedBy !== undefined ? { openedBy: a.openedBy } : {}), ...(a.tls !== undefined ? { tls: a.tls } : {}),
    };
    // A skip by an open breaker is routine while a remote is down (the breaker's opening was the news).
    if (a.outcome === 'allocated' || a.outcome === 'no-capacity' || a.outcome === 'breaker-open') logger.debug(line, 'remote attempt');
    else logger.warn({ ...line, message: a.message.slice(0, 300) }, 'remote attempt failed');
  }

  /** Logs a configuration problem at most once a minute. */
  #warnOnce(problem: string, fields: object): void {
    const now = Date.now();
    if ((this.#warned.get(problem) ?? 0) > now - 60_000) return;
    this.#warned.set(problem, now);
    if (this.#warned.size > 1_000) this.#warned.clear();
    this.#o.logger.warn({ ...fields, problem }, 'multi-cluster policy misconfigured; target not used');
  }

  /** Which targets a request would try, in which order, and why some would be skipped. Allocates nothing. */
  async explain(req: AllocationRequest, identity: string | null, idempotencyKey: string | null, signal: AbortSignal): Promise<RouteExplanation> {
    if (!req.multiClusterSetting.enabled) {
      const ok = this.#o.engine.pick(req) !== undefined;
      return {
        multiCluster: false,
        steps: [{ policy: '', clusterName: '', priority: 0, weight: 0, kind: 'local', namespace: req.namespace, endpoints: [], decision: ok ? 'try' : 'skip', reason: ok ? 'local cluster has a match' : 'local cluster has no matching GameServer' }],
        problems: [],
        randomized: false,
      };
    }
    const hash = idempotencyKey === null ? null : idempotencyHash(req.namespace, identity, idempotencyKey);
    const { plan, problems } = await this.#plan(req, signal, hash);
    const steps: RouteExplanation['steps'][number][] = [];
    for (const t of plan.targets) {
      const p = t.policy;
      const base = { policy: p.name, clusterName: p.clusterName, priority: p.priority, weight: p.weight, kind: t.kind, namespace: p.targetNamespace };
      if (t.problem !== null) {
        steps.push({ ...base, endpoints: t.endpoints, decision: 'skip', reason: t.problem });
        continue;
      }
      if (this.#o.mayUse && !this.#o.mayUse(identity, p.targetNamespace)) {
        steps.push({ ...base, endpoints: t.endpoints, decision: 'skip', reason: `forbidden: the caller may not use namespace ${p.targetNamespace}` });
        continue;
      }
      if (t.kind === 'local') {
        const ok = this.#o.engine.pick({ ...req, namespace: p.targetNamespace }) !== undefined;
        steps.push({ ...base, endpoints: [], decision: ok ? 'try' : 'skip', reason: ok ? 'local cluster has a match' : 'local cluster has no matching GameServer (no-capacity, no write)' });
        continue;
      }
      let tls;
      try {
        if (p.secretName === '') throw new SecretProblem('connectionInfo.secretName is required for a remote target');
        tls = await this.#o.policies.secret(p.namespace, p.secretName, signal);
      } catch (err) {
        steps.push({ ...base, endpoints: t.endpoints, decision: 'skip', reason: `misconfigured: ${(err as Error).message}` });
        continue;
      }
      const remote: RemoteTarget = { name: t.name, endpoints: t.endpoints, tls, credentials: `${p.namespace}/${p.secretName}`, serverCa: p.serverCa };
      const order = this.#o.remote.order(remote);
      const open = order.filter((e) => this.#o.remote.breakerState(remote, e) === 'open');
      const d = await this.#o.capacity.decide(remote, p.targetNamespace, req, this.#o.capacityWaitMs);
      const breakerNote = open.length > 0 ? `; breaker open for ${open.join(', ')}` : '';
      steps.push({ ...base, endpoints: order, decision: d.kind, reason: (d.kind === 'skip' ? d.reason : d.note) + breakerNote });
    }
    return { multiCluster: true, steps, problems, randomized: plan.randomized && hash === null };
  }
}

/** Stable words for each attempt outcome (callers see these; the remote's own text goes to the log). */
const OUTCOME_TEXT: Readonly<Record<string, string>> = {
  'no-capacity': 'no GameServer matched the request',
  rejected: 'the remote rejected the request as invalid',
  denied: 'the remote refused the client credentials',
  refused: 'the remote declined without allocating (overloaded, rate limited or not ready)',
  cancelled: 'the caller left before the call was sent',
  failed: 'the call failed; nothing was allocated',
  ambiguous: 'the request was sent and no answer came back: the remote may have allocated',
  'breaker-open': 'not attempted: the circuit breaker of this endpoint is open',
  'no-budget': 'not attempted: too little of the caller\'s deadline was left',
  'too-slow': 'not attempted: its recent answers took longer than the caller\'s deadline had left',
};

/**
 * Whether a repeat's answer, with the same idempotency key, proves that no earlier attempt
 * allocated: the remote checked the key and then found nothing or failed definitively. A refusal
 * at its door (overload, rate limit) or no call at all proves nothing.
 */
function settled(a: RemoteAttempt): boolean {
  return a.outcome === 'no-capacity' || a.outcome === 'rejected' || (a.outcome === 'failed' && a.sent && !a.ambiguous);
}

/** How an attempt is listed for the caller: stable words, plus what opened a breaker or failed a handshake. */
function attemptReport(target: string, a: RemoteAttempt): AttemptReport {
  const outcome = a.ambiguous ? 'ambiguous' : a.outcome;
  let message = a.outcome === 'too-slow' ? a.message : (OUTCOME_TEXT[outcome] ?? outcome);
  let cause: string | undefined;
  if (a.outcome === 'breaker-open' && a.openedBy !== undefined) {
    cause = a.openedBy;
    message = `${message}, opened by ${BREAKER_CAUSE_TEXT[a.openedBy]}`;
  } else if (a.tls !== undefined) {
    cause = 'tls';
    message = `the TLS handshake failed: ${a.tls}`;
  }
  return { target, endpoint: a.endpoint, outcome, code: a.code, message, ...(cause !== undefined ? { cause } : {}) };
}

const BREAKER_CAUSE_TEXT = {
  tls: 'TLS handshake failures with these client credentials',
  authentication: 'authentication failures with these client credentials',
  failures: 'failed calls',
} as const;

/** The request identifier recorded on the GameServer: the caller's (or a peer gateway's) if set, else ours. */
function requestIdOf(req: AllocationRequest, ctx: RouteContext): string {
  const a = req.metadata.annotations;
  return Object.hasOwn(a, REQUEST_ID_ANNOTATION) ? a[REQUEST_ID_ANNOTATION]! : ctx.reqId;
}

/** The request with the request identifier in its metadata, for the remote to write onto the GameServer. */
function withRequestId(req: AllocationRequest, requestId: string): AllocationRequest {
  return { ...req, metadata: { labels: req.metadata.labels, annotations: { ...req.metadata.annotations, [REQUEST_ID_ANNOTATION]: requestId } } };
}

/** The route ends on an attempt that may have allocated: the caller is told so, and where to look. */
function ambiguousError(target: string, endpoint: string, requestId: string, ctx: RouteContext, budget: Budget, attempts: readonly AttemptReport[]): AllocationError {
  const reason: Reason = ctx.signal.aborted ? abortError(ctx.signal).reason : budget.remainingMs() === 0 ? 'DEADLINE_EXCEEDED' : 'ALL_TARGETS_FAILED';
  return new AllocationError(
    reason,
    `target ${target} may have allocated a GameServer for this request: the request was sent and no answer came back. ` +
      `It was not tried elsewhere, so nothing is allocated twice; a GameServer allocated for it carries the annotation ${REQUEST_ID_ANNOTATION}=${requestId}`,
    { attempts, metadata: { ambiguous: 'true', target, endpoint, requestId } },
  );
}

/** A key is held to the request it was first used with ('' = recorded before fingerprints were kept). */
function sameRequest(recorded: string | undefined, fingerprint: string): void {
  if (recorded === undefined || recorded === '' || recorded === fingerprint) return;
  throw new AllocationError('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was already used with a different request; use a new key for a new request');
}

function withAttempts(err: AllocationError, attempts: readonly AttemptReport[]): AllocationError {
  if (attempts.length === 0) return err;
  return new AllocationError(err.reason, err.message, { attempts, metadata: { ...err.metadata } });
}

/** The most meaningful error once every target failed, with every attempt listed. */
export function finalError(attempts: readonly AttemptReport[]): AllocationError {
  const noCapacity = (o: string) => o === 'no-capacity' || o === 'skipped-no-capacity' || o === 'skipped';
  const count = attempts.length;
  let reason: Reason;
  let message: string;
  if (count > 0 && attempts.every((a) => noCapacity(a.outcome))) {
    reason = 'NO_GAME_SERVER';
    message = 'there is no available GameServer to allocate in any target';
  } else if (attempts.some((a) => a.outcome === 'forbidden') && attempts.every((a) => a.outcome === 'forbidden' || noCapacity(a.outcome))) {
    reason = 'PERMISSION_DENIED';
    message = 'the caller may not use the namespaces of the targets that could serve this request';
  } else if (attempts.some((a) => a.outcome === 'rejected') && attempts.every((a) => a.outcome === 'rejected' || noCapacity(a.outcome))) {
    reason = 'REMOTE_REJECTED';
    const r = attempts.find((a) => a.outcome === 'rejected')!;
    // The remote's own text is logged (remote attempt failed), not passed on: it may describe the remote's internals.
    message = `remote target ${r.target} rejected the request as invalid (${r.code}); its reason is in the gateway's log`;
  } else if (attempts.some((a) => a.outcome === 'no-budget' || a.outcome === 'too-slow')) {
    reason = 'DEADLINE_EXCEEDED';
    message = 'the caller\'s deadline ran out, or was too short for a target, before one served the request';
  } else {
    reason = 'ALL_TARGETS_FAILED';
    message = `every target failed: ${attempts.map((a) => `${a.target}: ${a.outcome}${a.code ? ` ${a.code}` : ''}`).join('; ')}`;
  }
  return new AllocationError(reason, message, { attempts });
}
