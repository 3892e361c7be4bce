// How one attempt on one endpoint ended, classified once, before anything (breaker, metrics,
// the router's fallback rules) counts it.
import { status } from '@grpc/grpc-js';
import { unallocatedAnswer } from './unallocated.ts';

/**
 * - allocated: OK.
 * - no-capacity: RESOURCE_EXHAUSTED (or agones' UNAVAILABLE "no GameServer"), healthy but full; next target at once.
 * - rejected: the remote refused the request itself (INVALID_ARGUMENT, agones' raw 422).
 * - denied: the remote refused us (PERMISSION_DENIED, UNAUTHENTICATED): a configuration problem.
 * - cancelled: our caller went away.
 * - failed: anything else; counts against the endpoint's health.
 */
export type Outcome = 'allocated' | 'no-capacity' | 'rejected' | 'denied' | 'cancelled' | 'failed';

/** agones-allocator sends validation errors with the HTTP code 422 as the gRPC status. */
export const AGONES_INVALID_CODE = 422;

export function classify(code: number, details = ''): Outcome {
  if (unallocatedAnswer(code, details)) return 'no-capacity';
  switch (code) {
    case status.OK: return 'allocated';
    case status.INVALID_ARGUMENT: case AGONES_INVALID_CODE: return 'rejected';
    case status.PERMISSION_DENIED: case status.UNAUTHENTICATED: return 'denied';
    case status.CANCELLED: return 'cancelled';
    default: return 'failed';
  }
}

/** True when this outcome says nothing bad about the endpoint's health (the breaker ignores it). */
export function healthy(o: Outcome): boolean {
  return o !== 'failed';
}

/** The status code's name ("UNAVAILABLE"); agones' 422 is named as such. */
export function codeName(code: number): string {
  if (code === AGONES_INVALID_CODE) return '422';
  return status[code] ?? String(code);
}

/**
 * Whether a failed call may have reached the remote's handler. False only when grpc-js says
 * the call never left: no connection, or the deadline passed while still waiting for one.
 */
export function maybeSent(code: number, details: string): boolean {
  if (code === status.UNAVAILABLE && /No connection established|failed to connect|Name resolution failed|DNS resolution failed|getaddrinfo/i.test(details)) return false;
  if (code === status.DEADLINE_EXCEEDED && /Waiting for LB pick/.test(details)) return false;
  return true;
}

/**
 * A failure after sending, for which we cannot know whether the remote allocated: the reply
 * was lost (deadline, connection dropped mid-call, stream reset).
 */
export function ambiguous(code: number, details: string): boolean {
  if (!maybeSent(code, details)) return false;
  if (code === status.DEADLINE_EXCEEDED || code === status.UNAVAILABLE) return true;
  return code === status.INTERNAL && /RST_STREAM|Connection dropped|ECONNRESET/i.test(details);
}
