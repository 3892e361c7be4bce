// The one Allocate pipeline behind both doors: decode → route → encode, with one log line
// and one metrics observation per call. Doors only translate transport details.
import { AllocationError } from '../allocation/errors.ts';
import { requestFromWire, type DecodeOptions } from '../allocation/from-proto.ts';
import { responseToWire } from '../allocation/to-proto.ts';
import type { WireAllocationRequest, WireAllocationResponse } from '../allocation/wire.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Router } from '../router/router.ts';
import type { CallContext } from './call-context.ts';
import { toWireError, type WireError } from './status.ts';

export type AllocateOutcome = { ok: true; response: WireAllocationResponse } | { ok: false; error: WireError };

export interface AllocateHandlerDeps {
  readonly router: Router;
  readonly decode: DecodeOptions;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export class AllocateHandler {
  readonly #deps: AllocateHandlerDeps;

  constructor(deps: AllocateHandlerDeps) {
    this.#deps = deps;
  }

  /** Serves one call; never throws. */
  async handle(wire: WireAllocationRequest, ctx: CallContext): Promise<AllocateOutcome> {
    const { logger, metrics } = this.#deps;
    metrics.inFlight.inc();
    const namespace = typeof wire.namespace === 'string' ? wire.namespace.slice(0, 63) : '';
    try {
      const req = requestFromWire(wire, this.#deps.decode);
      const allocation = await this.#deps.router.allocate(req, ctx);
      const latencyMs = Date.now() - ctx.startedAt;
      metrics.allocations.inc({ door: ctx.door, outcome: 'OK', source: allocation.source === 'local' ? 'local' : 'remote' });
      metrics.allocationSeconds.observe({ door: ctx.door, outcome: 'OK' }, latencyMs / 1000);
      logger.info(
        {
          audit: true, reqId: ctx.reqId, door: ctx.door, identity: ctx.identity, namespace: allocation.namespace,
          gameServer: allocation.gameServerName, source: allocation.source, outcome: 'OK', latencyMs,
        },
        'allocated',
      );
      return { ok: true, response: responseToWire(allocation) };
    } catch (err) {
      const error = toWireError(err);
      const latencyMs = Date.now() - ctx.startedAt;
      metrics.allocations.inc({ door: ctx.door, outcome: error.reason, source: 'none' });
      metrics.allocationSeconds.observe({ door: ctx.door, outcome: error.reason }, latencyMs / 1000);
      const line = { reqId: ctx.reqId, door: ctx.door, identity: ctx.identity, namespace, outcome: error.reason, latencyMs, message: error.message };
      if (error.reason === 'INTERNAL') logger.error({ ...line, err }, 'allocation failed');
      else if (err instanceof AllocationError && (error.reason === 'INVALID_FIELD' || error.reason === 'NO_GAME_SERVER')) logger.info(line, 'not allocated');
      else logger.warn(line, 'not allocated');
      return { ok: false, error };
    } finally {
      metrics.inFlight.dec();
      ctx.done();
    }
  }
}
