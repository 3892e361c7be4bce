// The gateway's one error type and its reason catalogue. Every reason is documented
// in the README ("Error reasons"); server/status.ts maps each to gRPC and HTTP.

/** Stable, documented reasons. Callers may switch on them (ErrorInfo.reason). */
export type Reason =
  | 'INVALID_FIELD'
  | 'NO_GAME_SERVER'
  | 'CONTENTION'
  | 'NO_POLICY'
  | 'ALL_TARGETS_FAILED'
  | 'REMOTE_REJECTED'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'OVERLOADED'
  | 'RATE_LIMITED'
  | 'NOT_READY'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'IDEMPOTENCY_CONFLICT'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'UPDATE_REJECTED'
  | 'INTERNAL';

/** Every reason, for documentation checks. */
export const REASONS: readonly Reason[] = [
  'INVALID_FIELD',
  'NO_GAME_SERVER',
  'CONTENTION',
  'NO_POLICY',
  'ALL_TARGETS_FAILED',
  'REMOTE_REJECTED',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'OVERLOADED',
  'RATE_LIMITED',
  'NOT_READY',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
  'IDEMPOTENCY_CONFLICT',
  'IDEMPOTENCY_KEY_REUSED',
  'UPDATE_REJECTED',
  'INTERNAL',
];

/** How one attempt on one target ended; reported when a route fails. */
export interface AttemptReport {
  /** Policy's clusterName, or "local". */
  readonly target: string;
  /** host:port dialled, or "local". */
  readonly endpoint: string;
  readonly outcome: string;
  /** gRPC status code name, e.g. "UNAVAILABLE". */
  readonly code: string;
  readonly message: string;
  /** What opened a circuit breaker ("tls", "authentication", "failures"), or why a connection failed ("tls"). */
  readonly cause?: string;
}

/** A failure with a catalogued reason; its message is safe to show to callers. */
export class AllocationError extends Error {
  override readonly name = 'AllocationError';
  readonly reason: Reason;
  readonly attempts: readonly AttemptReport[];
  /** Extra ErrorInfo metadata (e.g. the offending field). */
  readonly metadata: Readonly<Record<string, string>>;

  constructor(
    reason: Reason,
    message: string,
    options?: ErrorOptions & { attempts?: readonly AttemptReport[]; metadata?: Record<string, string> },
  ) {
    super(message, options);
    this.reason = reason;
    this.attempts = options?.attempts ?? [];
    this.metadata = options?.metadata ?? {};
  }
}

const PLAIN_KEY = /^[A-Za-z0-9._\/-]*$/;

/** Characters of caller input quoted back in a message at most. */
const ECHO_CHARS = 80;

/** A caller's value quoted for an error message, cut short: bad input must not come back whole. */
export function echo(v: unknown): string {
  const text = typeof v === 'string' ? v : (JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v));
  const cut = text.length > ECHO_CHARS ? `${text.slice(0, ECHO_CHARS)}…` : text;
  // Strings are always quoted; other values are shown as JSON, quoted once cut.
  return typeof v === 'string' || cut !== text ? JSON.stringify(cut) : text;
}

/** Longest INVALID_FIELD message; further problems are counted, not listed. */
const MAX_PROBLEMS_CHARS = 2_000;

/** `path[key]`, with the key JSON-quoted unless it is plain, so a key cannot forge or break a path. */
export function keyPath(path: string, key: string): string {
  return `${path}[${PLAIN_KEY.test(key) && key.length <= ECHO_CHARS ? key : echo(key)}]`;
}

/** Collects field problems by path and throws them all at once. */
export class FieldProblems {
  readonly #problems: string[] = [];
  #firstPath: string | null = null;

  add(path: string, detail: string): void {
    this.#firstPath ??= path;
    this.#problems.push(`${path}: ${detail}`);
  }

  get count(): number {
    return this.#problems.length;
  }

  throwIfAny(): void {
    if (this.#problems.length === 0) return;
    let message = '';
    let listed = 0;
    for (const problem of this.#problems) {
      if (listed > 0 && message.length + problem.length > MAX_PROBLEMS_CHARS) break;
      message += (listed > 0 ? '; ' : '') + problem;
      listed++;
    }
    if (listed < this.#problems.length) message += `; and ${this.#problems.length - listed} more`;
    throw new AllocationError('INVALID_FIELD', message, {
      metadata: { field: this.#firstPath ?? '' },
    });
  }
}
