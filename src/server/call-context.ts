// Per-call facts both front doors derive the same way: request id, deadline, abort signal.
import { randomUUID } from 'node:crypto';
import type { TraceCarrier } from '../observability/tracing.ts';
import type { RouteContext } from '../router/router.ts';

/** Door-independent call context; `done()` releases its timer. */
export interface CallContext extends RouteContext {
  readonly door: 'grpc' | 'rest';
  readonly startedAt: number;
  /** The caller's W3C trace context (traceparent, tracestate), if it sent one. */
  readonly trace: TraceCarrier;
  /** Aborts the call (e.g. the client went away). */
  cancel(): void;
  done(): void;
}

/** The longest delay setTimeout honours (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the call context; a deadline of Infinity gets `defaultDeadlineMs`. */
export function createCallContext(opts: {
  door: 'grpc' | 'rest';
  deadlineMs: number;
  defaultDeadlineMs: number;
  requestId?: string | undefined;
  identity: string | null;
  idempotencyKey?: string | undefined;
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}): CallContext {
  const startedAt = Date.now();
  // Timers hold at most 2^31-1 ms; a longer deadline would overflow into an immediate timeout.
  const deadlineMs = Math.min(Number.isFinite(opts.deadlineMs) ? opts.deadlineMs : startedAt + opts.defaultDeadlineMs, startedAt + MAX_TIMER_MS);
  const controller = new AbortController();
  let finished = false;
  const timer = setTimeout(
    () => controller.abort(new DOMException('deadline exceeded', 'TimeoutError')),
    Math.max(0, deadlineMs - startedAt),
  );
  return {
    door: opts.door,
    startedAt,
    trace: opts.traceparent ? { traceparent: opts.traceparent, ...(opts.tracestate ? { tracestate: opts.tracestate } : {}) } : {},
    deadlineMs,
    signal: controller.signal,
    // A caller-supplied id is kept only when it is safe to log verbatim.
    reqId: opts.requestId && SAFE_ID.test(opts.requestId) ? opts.requestId : randomUUID(),
    identity: opts.identity,
    idempotencyKey: opts.idempotencyKey && opts.idempotencyKey.length > 0 ? opts.idempotencyKey : null,
    // grpc-js reports every call as cancelled when its stream closes, also after a reply.
    cancel: () => {
      if (!finished) controller.abort(new DOMException('cancelled', 'AbortError'));
    },
    done: () => {
      finished = true;
      clearTimeout(timer);
    },
  };
}
