// The route a request takes: local only, or across clusters by policy.
import type { Allocation, AllocationRequest } from '../allocation/types.ts';

/** What a front door knows about the call, handed down the route. */
export interface RouteContext {
  /** Aborted when the caller's deadline passes or it cancels. */
  readonly signal: AbortSignal;
  /** Absolute deadline, epoch ms. */
  readonly deadlineMs: number;
  readonly reqId: string;
  /** Verified client identity (certificate SAN/CN), or null. */
  readonly identity: string | null;
  /** Caller-supplied key that makes a repeat return the same allocation. */
  readonly idempotencyKey: string | null;
}

/** Routes one validated request to a cluster and returns the allocation. */
export interface Router {
  allocate(req: AllocationRequest, ctx: RouteContext): Promise<Allocation>;
}
