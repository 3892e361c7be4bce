// Routing without multi-cluster policies: every request is served by the local engine.
import { AllocationError } from '../allocation/errors.ts';
import type { Allocation, AllocationRequest } from '../allocation/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { RouteContext, Router } from './router.ts';

export class LocalRouter implements Router {
  readonly #engine: Engine;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  allocate(req: AllocationRequest, ctx: RouteContext): Promise<Allocation> {
    if (req.multiClusterSetting.enabled) {
      // Agones answers this case with UNKNOWN; a missing policy is a precondition failure.
      return Promise.reject(new AllocationError('NO_POLICY', 'no multi-cluster allocation policy is specified'));
    }
    return this.#engine.allocate(req, { signal: ctx.signal });
  }
}
