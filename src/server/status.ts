// THE map from domain errors to gRPC status and HTTP status, used by both front doors.
// Details travel as a google.rpc.ErrorInfo (reason, domain, metadata) in grpc-status-details-bin
// and in the REST error body, so callers switch on a stable reason, not on message text.
import * as grpc from '@grpc/grpc-js';
import { AllocationError, type Reason } from '../allocation/errors.ts';
import { ERROR_INFO_URL, encodeStatusDetails } from '../protocol/error-info.ts';

const { status } = grpc;

/** ErrorInfo.domain of every error the gateway raises. */
export const ERROR_DOMAIN = 'allocator-gateway';

const CODES = {
  INVALID_FIELD: [status.INVALID_ARGUMENT, 400],
  NO_GAME_SERVER: [status.RESOURCE_EXHAUSTED, 429],
  CONTENTION: [status.ABORTED, 409],
  NO_POLICY: [status.FAILED_PRECONDITION, 400],
  ALL_TARGETS_FAILED: [status.UNAVAILABLE, 503],
  REMOTE_REJECTED: [status.FAILED_PRECONDITION, 400],
  DEADLINE_EXCEEDED: [status.DEADLINE_EXCEEDED, 504],
  CANCELLED: [status.CANCELLED, 499],
  OVERLOADED: [status.UNAVAILABLE, 503], // never RESOURCE_EXHAUSTED: that code means "no game server"
  RATE_LIMITED: [status.UNAVAILABLE, 503],
  NOT_READY: [status.UNAVAILABLE, 503],
  PERMISSION_DENIED: [status.PERMISSION_DENIED, 403],
  UNAUTHENTICATED: [status.UNAUTHENTICATED, 401],
  IDEMPOTENCY_CONFLICT: [status.ALREADY_EXISTS, 409],
  // As the IETF Idempotency-Key draft: a key reused with a different request is 422, never the earlier result.
  IDEMPOTENCY_KEY_REUSED: [status.FAILED_PRECONDITION, 422],
  UPDATE_REJECTED: [status.UNKNOWN, 500], // as agones-allocator answers "could not update the selected GameServer"
  INTERNAL: [status.INTERNAL, 500],
} as const satisfies Record<Reason, readonly [grpc.status, number]>;

/**
 * HTTP status answered for "no GameServer" (agones-allocator's HTTP_UNALLOCATED_STATUS_CODE, default 429); the gRPC
 * code follows it as in agones-allocator: 429 → RESOURCE_EXHAUSTED, 503 → UNAVAILABLE (for meshes that retry 429).
 */
export type UnallocatedStatus = 429 | 503;

/** A failure ready to send: gRPC code, HTTP status, message and ErrorInfo. */
export interface WireError {
  readonly code: grpc.status;
  readonly http: number;
  readonly message: string;
  readonly reason: Reason;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Classifies any thrown value; unknown errors become INTERNAL without leaking their text. */
export function toWireError(err: unknown, unallocated: UnallocatedStatus = 429): WireError {
  if (!(err instanceof AllocationError)) {
    return { code: status.INTERNAL, http: 500, message: 'internal error', reason: 'INTERNAL', metadata: {} };
  }
  const [code, http] = err.reason === 'NO_GAME_SERVER' && unallocated === 503 ? [status.UNAVAILABLE, 503] : CODES[err.reason];
  const metadata: Record<string, string> = { ...err.metadata };
  // Each attempt's text (a remote's error, TLS errors, secret problems) stays in the log: callers
  // get target, endpoint, outcome and code, which they can switch on.
  if (err.attempts.length > 0) metadata.attempts = JSON.stringify(err.attempts.map(({ message: _text, ...safe }) => safe));
  return { code, http, message: err.message, reason: err.reason, metadata };
}

/** The HTTP status for a gRPC code, for errors that did not come from us (e.g. a remote's). */
export function httpStatusOf(code: grpc.status): number {
  switch (code) {
    case status.OK: return 200;
    case status.CANCELLED: return 499;
    case status.INVALID_ARGUMENT: case status.FAILED_PRECONDITION: case status.OUT_OF_RANGE: return 400;
    case status.DEADLINE_EXCEEDED: return 504;
    case status.NOT_FOUND: return 404;
    case status.ALREADY_EXISTS: case status.ABORTED: return 409;
    case status.PERMISSION_DENIED: return 403;
    case status.UNAUTHENTICATED: return 401;
    case status.RESOURCE_EXHAUSTED: return 429;
    case status.UNIMPLEMENTED: return 501;
    case status.UNAVAILABLE: return 503;
    case status.UNKNOWN: case status.INTERNAL: case status.DATA_LOSS: return 500;
    default: return 500;
  }
}

/** A grpc-js error object (for callback(err)) carrying the ErrorInfo in grpc-status-details-bin. */
export function toServiceError(w: WireError): Partial<grpc.ServiceError> {
  const md = new grpc.Metadata();
  md.set('grpc-status-details-bin', encodeStatusDetails(w.code, w.message, { reason: w.reason, domain: ERROR_DOMAIN, metadata: w.metadata }));
  return { code: w.code, details: w.message, metadata: md };
}

/** The REST error body (grpc-gateway's shape, with an ErrorInfo in details). */
export function toJsonError(w: WireError): { code: number; message: string; details: object[] } {
  return {
    code: w.code,
    message: w.message,
    details: [{ '@type': ERROR_INFO_URL, reason: w.reason, domain: ERROR_DOMAIN, metadata: w.metadata }],
  };
}
