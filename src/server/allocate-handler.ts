// The one Allocate pipeline behind both doors: admit → decode → authorize → route → encode,
// with one audit log line and one metrics observation per call, refusals included. Doors only
// translate transport details.
import { AllocationError } from '../allocation/errors.ts';
import { requestFromWire, type DecodeOptions } from '../allocation/from-proto.ts';
import type { AllocationRequest } from '../allocation/types.ts';
import { responseToWire } from '../allocation/to-proto.ts';
import type { WireAllocationRequest, WireAllocationResponse } from '../allocation/wire.ts';
import type { Logger } from '../observability/logger.ts';
import { recordAllocation, type Metrics } from '../observability/metrics.ts';
import { startSpan, tracingEnabled } from '../observability/tracing.ts';
import { CLUSTER_ANNOTATION, idempotencyHash } from '../router/idempotency.ts';
import { FLEET_LABEL } from '../router/capacity.ts';
import type { Router } from '../router/router.ts';
import type { Admission, Release } from './admission.ts';
import type { Authorizer } from './authorization.ts';
import type { CallContext } from './call-context.ts';
import { toWireError, type UnallocatedStatus, type WireError } from './status.ts';

export type AllocateOutcome = { ok: true; response: WireAllocationResponse } | { ok: false; error: WireError };

export interface AllocateHandlerDeps {
  readonly router: Router;
  readonly decode: DecodeOptions;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Bound on calls in flight and per-client rates; absent = none. */
  readonly admission?: Admission;
  /** Per-client namespace and forwarding rights; absent = open. */
  readonly authorizer?: Authorizer;
  /** Status of a "no GameServer" answer on both doors; default 429 / RESOURCE_EXHAUSTED. */
  readonly unallocatedStatus?: UnallocatedStatus;
}

/** The request, or a reader for it that runs only once the call is admitted (REST bodies). */
export type AllocateInput = WireAllocationRequest | (() => Promise<WireAllocationRequest>);

export class AllocateHandler {
  readonly #deps: AllocateHandlerDeps;
  /**
   * The success line's logger: that line holds only flat values the gateway made (no object a
   * secret could sit in), so it skips redaction, which cost more than the rest of the line.
   */
  readonly #auditOk: Logger;
  // Shed calls are summarised (one line a second per reason and identity) so a flood cannot flood the log too.
  readonly #shedCounts = new Map<string, { line: object; count: number }>();
  #shedTimer: NodeJS.Timeout | undefined;

  constructor(deps: AllocateHandlerDeps) {
    this.#deps = deps;
    this.#auditOk = typeof deps.logger.child === 'function' ? deps.logger.child({}, { redact: { paths: [] } }) : deps.logger;
  }

  #shed(line: { outcome: string; identity: string | null }): void {
    const key = `${line.outcome}|${line.identity ?? ''}`;
    const entry = this.#shedCounts.get(key);
    if (entry) {
      entry.count++;
      return;
    }
    if (this.#shedCounts.size >= 1_000) return; // bounded even under a flood of identities
    this.#deps.logger.warn(line, 'not allocated');
    this.#shedCounts.set(key, { line, count: 0 });
    this.#shedTimer ??= setTimeout(() => {
      this.#shedTimer = undefined;
      for (const { line: l, count } of this.#shedCounts.values()) {
        if (count > 0) this.#deps.logger.warn({ ...l, shed: count }, 'not allocated (more calls refused in the last second)');
      }
      this.#shedCounts.clear();
    }, 1_000);
    this.#shedTimer.unref();
  }

  /** Answers a call the door refused before the pipeline (e.g. no clientAuth usage), audited like any refusal. */
  refuse(err: AllocationError, ctx: CallContext): AllocateOutcome {
    try {
      return this.#fail(err, ctx, '');
    } finally {
      ctx.done();
    }
  }

  #fail(err: unknown, ctx: CallContext, namespace: string, req?: AllocationRequest): AllocateOutcome {
    const { logger, metrics } = this.#deps;
    const error = toWireError(err, this.#deps.unallocatedStatus);
    const latencyMs = Date.now() - ctx.startedAt;
    recordAllocation(metrics, { door: ctx.door, outcome: error.reason, source: 'none', latencyMs, ...(req ? { scheduling: req.scheduling, multiCluster: req.multiClusterSetting.enabled } : {}) });
    const line = {
      audit: true, reqId: ctx.reqId, door: ctx.door, identity: ctx.identity, namespace, outcome: error.reason, latencyMs, message: error.message.slice(0, 1_000),
      // A route that ended on an attempt that may have allocated: where, and the request id its GameServer carries.
      ...(error.metadata.ambiguous === 'true' ? { ambiguous: true, target: error.metadata.target, endpoint: error.metadata.endpoint, requestId: error.metadata.requestId } : {}),
    };
    if (error.reason === 'OVERLOADED' || error.reason === 'RATE_LIMITED') this.#shed(line);
    else if (error.reason === 'INTERNAL') logger.error({ ...line, err }, 'allocation failed');
    else if (err instanceof AllocationError && (error.reason === 'INVALID_FIELD' || error.reason === 'NO_GAME_SERVER')) logger.info(line, 'not allocated');
    else logger.warn(line, 'not allocated');
    return { ok: false, error };
  }

  /** Serves one call; never throws. Traced as the root span of the call when tracing is on. */
  async handle(input: AllocateInput, ctx: CallContext): Promise<AllocateOutcome> {
    if (!tracingEnabled()) return await this.#handle(input, ctx);
    const span = startSpan('Allocate', { 'rpc.system': ctx.door === 'grpc' ? 'grpc' : 'http', 'allocator_gateway.door': ctx.door, 'allocator_gateway.request_id': ctx.reqId }, { role: 'server', parent: ctx.trace });
    const outcome = await span.run(() => this.#handle(input, ctx));
    if (outcome.ok) span.end({ 'allocator_gateway.outcome': 'OK', 'allocator_gateway.game_server': outcome.response.gameServerName, 'allocator_gateway.source': outcome.response.source });
    else span.end({ 'allocator_gateway.outcome': outcome.error.reason }, outcome.error.message);
    return outcome;
  }

  async #handle(input: AllocateInput, ctx: CallContext): Promise<AllocateOutcome> {
    const { metrics } = this.#deps;
    metrics.inFlight.inc();
    let namespace = '';
    let req: AllocationRequest | undefined;
    let release: Release | undefined;
    try {
      release = this.#deps.admission?.admit(ctx.identity);
      const wire = typeof input === 'function' ? await input() : input;
      namespace = typeof wire.namespace === 'string' ? wire.namespace.slice(0, 63) : '';
      req = requestFromWire(wire, this.#deps.decode);
      this.#deps.authorizer?.check(ctx.identity, req.namespace, req.multiClusterSetting.enabled);
      const allocation = await this.#deps.router.allocate(req, ctx);
      const latencyMs = Date.now() - ctx.startedAt;
      const cluster = allocation.metadata.annotations[CLUSTER_ANNOTATION] ?? (allocation.source === 'local' ? 'local' : allocation.source);
      recordAllocation(metrics, {
        door: ctx.door, outcome: 'OK', source: allocation.source === 'local' ? 'local' : 'remote', latencyMs,
        scheduling: req.scheduling, multiCluster: req.multiClusterSetting.enabled, fleet: allocation.metadata.labels[FLEET_LABEL], cluster,
      });
      this.#auditOk.info(
        {
          audit: true, reqId: ctx.reqId, door: ctx.door, identity: ctx.identity, namespace: allocation.namespace,
          gameServer: allocation.gameServerName, cluster, source: allocation.source, outcome: 'OK', latencyMs,
          // The hashed key (as stored on the GameServer), so an audit can tie a lost reply to its retry.
          ...(ctx.idempotencyKey !== null ? { idempotencyKey: idempotencyHash(req.namespace, ctx.identity, ctx.idempotencyKey) } : {}),
        },
        'allocated',
      );
      return { ok: true, response: responseToWire(allocation) };
    } catch (err) {
      return this.#fail(err, ctx, namespace, req);
    } finally {
      release?.();
      metrics.inFlight.dec();
      ctx.done();
    }
  }
}
