// How one attempt on one endpoint ended, classified once, before anything (breaker, metrics,
// the router's fallback rules) counts it. A gateway's answer carries an ErrorInfo that says
// what happened; agones-allocator's answer is classified from its status alone.
import { status } from '@grpc/grpc-js';
import { unallocatedAnswer } from './unallocated.ts';
import type { ErrorInfo } from '../protocol/error-info.ts';

/**
 * - allocated: OK.
 * - no-capacity: RESOURCE_EXHAUSTED (or agones' UNAVAILABLE "no GameServer"), healthy but full; next target at once.
 * - rejected: the remote refused the request itself (INVALID_ARGUMENT, agones' raw 422).
 * - denied: the remote refused us (PERMISSION_DENIED, UNAUTHENTICATED): a configuration problem.
 * - refused: the remote declined without allocating (a gateway's OVERLOADED, RATE_LIMITED,
 *   NOT_READY, CONTENTION; agones' ABORTED contention); another target may serve.
 * - cancelled: our caller went away.
 * - failed: anything else; counts against the endpoint's health.
 */
export type Outcome = 'allocated' | 'no-capacity' | 'rejected' | 'denied' | 'refused' | 'cancelled' | 'failed';

/** agones-allocator sends validation errors with the HTTP code 422 as the gRPC status. */
export const AGONES_INVALID_CODE = 422;

/** ErrorInfo.domain of the gateway's errors (server/status.ts): an answer from a gateway. */
export const GATEWAY_DOMAIN = 'allocator-gateway';

/** A remote's answer to one call as the client saw it. */
export interface RemoteAnswer {
  readonly code: number;
  readonly details: string;
  /** The ErrorInfo of the status, when it carried one. */
  readonly info?: ErrorInfo | null;
}

export interface Classification {
  readonly outcome: Outcome;
  /** The request may have reached the remote's handler. */
  readonly sent: boolean;
  /** Sent, and it may have allocated without us knowing (reply lost, or the remote says so). */
  readonly ambiguous: boolean;
}

const GATEWAY_REASONS: Readonly<Record<string, Outcome>> = {
  NO_GAME_SERVER: 'no-capacity',
  INVALID_FIELD: 'rejected',
  NO_POLICY: 'rejected',
  REMOTE_REJECTED: 'rejected',
  IDEMPOTENCY_KEY_REUSED: 'rejected',
  PERMISSION_DENIED: 'denied',
  UNAUTHENTICATED: 'denied',
  OVERLOADED: 'refused',
  RATE_LIMITED: 'refused',
  NOT_READY: 'refused',
  CONTENTION: 'refused',
  CANCELLED: 'cancelled',
  // The gateway marks every failure that may have allocated with metadata ambiguous=true;
  // these without it are definitive: nothing was allocated for the call.
  DEADLINE_EXCEEDED: 'failed',
  ALL_TARGETS_FAILED: 'failed',
};

/** The one classifier: a gateway's answer by its ErrorInfo, anything else by its status code. */
export function classify(a: RemoteAnswer): Classification {
  if (a.code === status.OK) return { outcome: 'allocated', sent: true, ambiguous: false };
  const info = a.info?.domain === GATEWAY_DOMAIN ? a.info : null;
  if (info) {
    if (info.metadata.ambiguous === 'true') return { outcome: 'failed', sent: true, ambiguous: true };
    const outcome = Object.hasOwn(GATEWAY_REASONS, info.reason) ? GATEWAY_REASONS[info.reason]! : undefined;
    // IDEMPOTENCY_CONFLICT: the remote is still serving this key and may yet allocate; INTERNAL: unknown.
    if (outcome !== undefined) return { outcome, sent: true, ambiguous: false };
    return { outcome: 'failed', sent: true, ambiguous: true };
  }
  const sent = maybeSent(a.code, a.details);
  // agones-allocator's "no GameServer" under the status its operator chose (429 → RESOURCE_EXHAUSTED, or 503).
  if (unallocatedAnswer(a.code, a.details)) return { outcome: 'no-capacity', sent, ambiguous: false };
  switch (a.code) {
    case status.RESOURCE_EXHAUSTED: return { outcome: 'no-capacity', sent, ambiguous: false };
    case status.INVALID_ARGUMENT: case AGONES_INVALID_CODE: return { outcome: 'rejected', sent, ambiguous: false };
    case status.PERMISSION_DENIED: case status.UNAUTHENTICATED: return { outcome: 'denied', sent, ambiguous: false };
    // agones: "too many concurrent requests" before any write.
    case status.ABORTED: return { outcome: 'refused', sent, ambiguous: false };
    case status.CANCELLED: return { outcome: 'cancelled', sent, ambiguous: false };
    default: return { outcome: 'failed', sent, ambiguous: sent && lostReply(a.code, a.details) };
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

/** A failure after sending that loses the reply: deadline, connection dropped mid-call, stream reset. */
function lostReply(code: number, details: string): boolean {
  if (code === status.DEADLINE_EXCEEDED || code === status.UNAVAILABLE) return true;
  return code === status.INTERNAL && /RST_STREAM|Connection dropped|ECONNRESET/i.test(details);
}
