// Routes by GameServerAllocationPolicy: local first where the policies say so, then remote
// allocators, tier by tier, inside one deadline budget. Never two targets at once; after a
// lost reply (the remote may have allocated) no fallback unless an idempotency key dedups it.
import { AllocationError, type AttemptReport, type Reason } from '../allocation/errors.ts';
import { forwardedRequestToWire, responseFromWire } from '../allocation/to-proto.ts';
import type { Allocation, AllocationRequest } from '../allocation/types.ts';
import { abortError, allocationOf, type Engine } from '../engine/engine.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RemoteAttempt, RemoteClient, RemoteTarget } from '../remote/remote-client.ts';
import { Budget } from './budget.ts';
import type { CapacityCache } from './capacity-cache.ts';
import { CLUSTER_ANNOTATION, IDEMPOTENCY_ANNOTATION, idempotencyHash, type IdempotencyLedger } from './idempotency.ts';
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
  readonly #inFlight = new Map<string, Promise<Allocation>>();
  readonly #warned = new Map<string, number>();

  constructor(opts: PolicyRouterOptions) {
    this.#o = opts;
  }

  async allocate(req: AllocationRequest, ctx: RouteContext): Promise<Allocation> {
    const budget = new Budget(ctx.deadlineMs);
    if (ctx.idempotencyKey === null) return await this.#route(req, ctx, budget, null);
    const hash = idempotencyHash(req.namespace, ctx.identity, ctx.idempotencyKey);
    // Same key on this replica at once: share one route.
    const id = `${req.namespace}/${hash}`;
    const running = this.#inFlight.get(id);
    if (running) return await running;
    const p = this.#keyed(req, ctx, budget, hash).finally(() => this.#inFlight.delete(id));
    this.#inFlight.set(id, p);
    return await p;
  }

  async #keyed(req: AllocationRequest, ctx: RouteContext, budget: Budget, hash: string): Promise<Allocation> {
    const { engine, ledger, logger } = this.#o;
    // A GameServer of this cluster already carries the key (also one whose write was reported
    // ambiguous and has landed since: checked on every poll, as the watch may deliver it any time).
    const carried = (): Allocation | undefined => {
      const gs = engine.index.findByAnnotation(IDEMPOTENCY_ANNOTATION, req.namespace, hash);
      return gs?.state === 'Allocated' ? allocationOf(gs, 'local') : undefined;
    };
    for (;;) {
      const local = carried();
      if (local) return local;
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      let claim;
      try {
        claim = await ledger.claim(req.namespace, hash, budget.remainingMs() + (this.#o.claimGraceMs ?? 5_000), ctx.signal);
      } catch (err) {
        if (ctx.signal.aborted) throw abortError(ctx.signal);
        logger.error({ reqId: ctx.reqId, namespace: req.namespace, err: (err as Error).message }, 'idempotency ledger unavailable');
        throw new AllocationError('NOT_READY', 'the idempotency record could not be read; retry', { cause: err });
      }
      if (claim.kind === 'done') {
        logger.info({ reqId: ctx.reqId, namespace: req.namespace, gameServer: claim.allocation.gameServerName, source: claim.allocation.source }, 'idempotent repeat: returning the earlier allocation');
        return claim.allocation;
      }
      if (claim.kind === 'won') break;
      // Another replica is serving this key: wait for its result rather than allocate twice.
      if (budget.remainingMs() < (this.#o.idempotencyPollMs ?? 50) * 2) {
        throw new AllocationError('IDEMPOTENCY_CONFLICT', `a request with this idempotency key is still being served (by ${claim.holder}); retry to get its result`);
      }
      await new Promise((r) => setTimeout(r, this.#o.idempotencyPollMs ?? 50));
    }
    // The claim's outcome is recorded without holding the caller's answer: a stalled Lease write
    // must not turn a made allocation into DEADLINE_EXCEEDED. Meanwhile a repeat finds a local
    // GameServer by its annotation, or takes this replica's Lease back (see the ledger).
    try {
      const allocation = carried() ?? (await this.#route(req, ctx, budget, hash));
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
      const why = ns.policies.length === 0 ? `namespace ${req.namespace} has no usable GameServerAllocationPolicy` : 'policySelector matches none of the namespace\'s policies';
      throw new AllocationError('NO_POLICY', `no multi-cluster allocation policy is specified (${why})${problems.length > 0 ? `; ignored: ${problems.join(' | ')}` : ''}`, {
        metadata: { namespace: req.namespace },
      });
    }
    return { plan: planRoute(selected, hash === null ? Math.random : seededRandom(hash)), problems };
  }

  async #route(req: AllocationRequest, ctx: RouteContext, budget: Budget, hash: string | null): Promise<Allocation> {
    const annotations: Record<string, string> = hash === null ? {} : { [IDEMPOTENCY_ANNOTATION]: hash };
    if (!req.multiClusterSetting.enabled) {
      return await this.#o.engine.allocate(req, { signal: ctx.signal, annotations });
    }
    const { plan } = await this.#plan(req, ctx.signal, hash);
    const attempts: AttemptReport[] = [];
    const tried = new Set<string>();
    for (const target of plan.targets) {
      const step = await this.#step(target, req, ctx, budget, hash, annotations, attempts, tried);
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
  ): Promise<Step> {
    const { logger, metrics } = this.#o;
    const p = target.policy;
    const ns = p.targetNamespace;
    const report = (endpoint: string, outcome: string, code: string, message: string): void => {
      attempts.push({ target: target.name, endpoint, outcome, code, message });
    };
    if (target.problem !== null) {
      this.#warnOnce(target.problem, { reqId: ctx.reqId, namespace: req.namespace, policy: p.name, target: target.name });
      report(target.kind === 'local' ? 'local' : target.endpoints.join(','), 'misconfigured', '', target.problem);
      return { next: true };
    }
    const destination = target.kind === 'local' ? `local|${ns}` : `${[...target.endpoints].sort().join(',')}|${ns}`;
    if (tried.has(destination)) {
      report(target.kind === 'local' ? 'local' : target.endpoints.join(','), 'skipped', '', `policy ${p.name}: same destination as an earlier target of this route`);
      return { next: true };
    }
    tried.add(destination);

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
      report(target.endpoints.join(','), 'misconfigured', '', problem);
      return { next: true };
    }
    try {
      tls = await this.#o.policies.secret(p.namespace, p.secretName, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) return { stop: withAttempts(abortError(ctx.signal), attempts) };
      const problem = `policy ${p.namespace}/${p.name}: ${err instanceof SecretProblem ? err.message : String(err)}`;
      this.#warnOnce(problem, { policy: p.name, target: target.name });
      report(target.endpoints.join(','), 'misconfigured', '', problem);
      return { next: true };
    }
    const remote: RemoteTarget = { name: target.name, endpoints: target.endpoints, tls, serverCa: p.serverCa };
    const decision = await this.#o.capacity.decide(remote, ns, req, Math.min(this.#o.capacityWaitMs, budget.remainingMs() / 4));
    if (decision.kind === 'skip') {
      report(target.endpoints.join(','), 'skipped-no-capacity', '', decision.reason);
      metrics.remoteAttempts.inc({ target: target.name, endpoint: target.endpoints.join(','), outcome: 'skipped-no-capacity' });
      return { next: true };
    }
    const forwardedKey = hash === null ? null : `${FORWARDED_KEY_PREFIX}${hash}`;
    const result = await this.#o.remote.allocate(remote, forwardedRequestToWire(req, ns), {
      budget,
      idempotencyKey: forwardedKey,
      reqId: ctx.reqId,
      signal: ctx.signal,
    });
    for (const a of result.attempts) this.#observe(target, ns, ctx, a);
    for (const a of result.attempts) if (a.outcome !== 'allocated') report(a.endpoint, a.ambiguous ? 'ambiguous' : a.outcome, a.code, a.message);
    if (result.ok) {
      const allocation = responseFromWire(result.response, ns, result.endpoint);
      if (p.clusterName === '') return { done: allocation };
      return {
        done: { ...allocation, metadata: { labels: allocation.metadata.labels, annotations: { ...allocation.metadata.annotations, [CLUSTER_ANNOTATION]: p.clusterName } } },
      };
    }
    const last = result.attempts.at(-1);
    if (last?.outcome === 'no-capacity') this.#o.capacity.noteNoCapacity(remote, ns, req);
    if (last?.outcome === 'cancelled' || ctx.signal.aborted) return { stop: withAttempts(abortError(ctx.signal), attempts) };
    if (last?.ambiguous && hash === null) {
      const deadline = budget.remainingMs() === 0;
      return {
        stop: new AllocationError(
          deadline ? 'DEADLINE_EXCEEDED' : 'ALL_TARGETS_FAILED',
          `target ${target.name} (${last.endpoint}) may have allocated but its reply was lost (${last.code}: ${last.message}); ` +
            'not tried elsewhere, to never allocate twice (send an idempotency key to allow fallback)',
          { attempts, metadata: { ambiguous: 'true' } },
        ),
      };
    }
    if (last?.outcome === 'no-budget' || budget.remainingMs() === 0) {
      return { stop: new AllocationError('DEADLINE_EXCEEDED', `the caller's deadline left no time for ${target.name} or later targets`, { attempts }) };
    }
    return { next: true };
  }

  #observe(target: PlanTarget, namespace: string, ctx: RouteContext, a: RemoteAttempt): void {
    const { logger, metrics, remote } = this.#o;
    const outcome = a.ambiguous ? 'ambiguous' : a.outcome;
    metrics.remoteAttempts.inc({ target: target.name, endpoint: a.endpoint, outcome });
    if (a.outcome !== 'breaker-open' && a.outcome !== 'no-budget') metrics.remoteSeconds.observe({ target: target.name, endpoint: a.endpoint }, a.latencyMs / 1000);
    const line = {
      reqId: ctx.reqId, namespace, target: target.name, endpoint: a.endpoint, outcome, code: a.code,
      latencyMs: Math.round(a.latencyMs * 10) / 10, breaker: remote.breakerState(a.endpoint),
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
      const remote: RemoteTarget = { name: t.name, endpoints: t.endpoints, tls, serverCa: p.serverCa };
      const order = this.#o.remote.order(remote);
      const open = order.filter((e) => this.#o.remote.breakerState(e) === 'open');
      const d = await this.#o.capacity.decide(remote, p.targetNamespace, req, this.#o.capacityWaitMs);
      const breakerNote = open.length > 0 ? `; breaker open for ${open.join(', ')}` : '';
      steps.push({ ...base, endpoints: order, decision: d.kind, reason: (d.kind === 'skip' ? d.reason : d.note) + breakerNote });
    }
    return { multiCluster: true, steps, problems, randomized: plan.randomized && hash === null };
  }
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
  } else if (attempts.some((a) => a.outcome === 'rejected') && attempts.every((a) => a.outcome === 'rejected' || noCapacity(a.outcome))) {
    reason = 'REMOTE_REJECTED';
    const r = attempts.find((a) => a.outcome === 'rejected')!;
    message = `remote ${r.target} (${r.endpoint}) rejected the request: ${r.code}: ${r.message.slice(0, 500)}`;
  } else if (attempts.some((a) => a.outcome === 'no-budget')) {
    reason = 'DEADLINE_EXCEEDED';
    message = 'the caller\'s deadline ran out before a target served the request';
  } else {
    reason = 'ALL_TARGETS_FAILED';
    message = `every target failed: ${attempts.map((a) => `${a.target}@${a.endpoint}: ${a.outcome}${a.code ? ` ${a.code}` : ''}`).join('; ')}`;
  }
  return new AllocationError(reason, message, { attempts });
}
