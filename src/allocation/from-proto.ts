// Wire request → validated domain request, with Agones' defaults and selector resolution.
// Every problem is reported by field path in one INVALID_FIELD error.
import { echo, FieldProblems, keyPath } from './errors.ts';
import { annotationKeyProblem, labelValueProblem, namespaceProblem, qualifiedKeyProblem } from './labels.ts';
import { INT64_MAX, INT64_MIN, parseInt64, type Int64 } from './int64.ts';
import { LIMITS } from './limits.ts';
import { setOwn } from './records.ts';
import { isReservedAnnotation } from './reserved-annotations.ts';
import type {
  AllocationRequest,
  CounterAction,
  CounterSelector,
  GameServerSelector,
  ListAction,
  ListSelector,
  MetaPatch,
  Priority,
} from './types.ts';
import type {
  WireAllocationRequest,
  WireCounterAction,
  WireGameServerSelector,
  WireInt64Value,
  WireListAction,
  WireMetaPatch,
  WirePriority,
} from './wire.ts';

/** Feature switches that change how requests are read (as Agones' feature gates do). */
export interface DecodeOptions {
  /** Agones' PlayerAllocationFilter gate: honour selector.players. Off in Agones by default. */
  readonly playerAllocationFilter: boolean;
}

const COUNTER_ACTIONS = new Set(['Increment', 'Decrement']);

/** Parses an int64 carried as a decimal string (proto-loader's longs) or a number, exactly. */
function int64(p: FieldProblems, path: string, raw: string | number | undefined | null): Int64 {
  if (raw === undefined || raw === null || raw === '') return 0;
  const n = parseInt64(raw);
  if (n === null) {
    p.add(path, `must be an integer between ${INT64_MIN} and ${INT64_MAX}`);
    return 0;
  }
  return n;
}

function nonNegative(p: FieldProblems, path: string, raw: string | number | undefined | null): Int64 {
  const n = int64(p, path, raw);
  if (n < 0) p.add(path, 'must be greater than or equal to 0');
  return n;
}

function wrapped(p: FieldProblems, path: string, w: WireInt64Value | null | undefined): Int64 | null {
  if (w === null || w === undefined) return null;
  return nonNegative(p, path, w.value);
}

function boundedMap<T>(p: FieldProblems, path: string, m: Record<string, T> | undefined): [string, T][] {
  const entries = Object.entries(m ?? {});
  if (entries.length > LIMITS.maxMapEntries) {
    p.add(path, `at most ${LIMITS.maxMapEntries} entries allowed, got ${entries.length}`);
    return [];
  }
  return entries;
}

function labelMap(p: FieldProblems, path: string, m: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of boundedMap(p, path, m)) {
    const problem = qualifiedKeyProblem(k) ?? labelValueProblem(v);
    if (problem) p.add(keyPath(path, k), problem);
    else setOwn(out, k, v);
  }
  return out;
}

function annotationMap(p: FieldProblems, path: string, m: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of boundedMap(p, path, m)) {
    const problem = isReservedAnnotation(k) ? 'is reserved for the gateway (it records idempotency keys and the serving cluster)' : annotationKeyProblem(k);
    if (problem) p.add(keyPath(path, k), problem);
    else setOwn(out, k, v);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (bytes > LIMITS.maxAnnotationBytes) p.add(path, `may not exceed ${LIMITS.maxAnnotationBytes} bytes, got ${bytes}`);
  return out;
}

function maxBound(p: FieldProblems, path: string, what: string, min: Int64, max: Int64): void {
  if (max !== 0 && max < min) p.add(`${path}.max${what}`, `must be zero or greater than min${what} ${min}`);
}

function selector(p: FieldProblems, path: string, w: WireGameServerSelector, opts: DecodeOptions): GameServerSelector {
  const counters: Record<string, CounterSelector> = {};
  for (const [k, c] of boundedMap(p, `${path}.counters`, w.counters)) {
    const at = keyPath(`${path}.counters`, k);
    const s = {
      minCount: nonNegative(p, `${at}.minCount`, c.minCount),
      maxCount: nonNegative(p, `${at}.maxCount`, c.maxCount),
      minAvailable: nonNegative(p, `${at}.minAvailable`, c.minAvailable),
      maxAvailable: nonNegative(p, `${at}.maxAvailable`, c.maxAvailable),
    };
    maxBound(p, at, 'Count', s.minCount, s.maxCount);
    maxBound(p, at, 'Available', s.minAvailable, s.maxAvailable);
    setOwn(counters, k, s);
  }
  const lists: Record<string, ListSelector> = {};
  for (const [k, l] of boundedMap(p, `${path}.lists`, w.lists)) {
    const at = keyPath(`${path}.lists`, k);
    const s = {
      containsValue: l.containsValue ?? '',
      minAvailable: nonNegative(p, `${at}.minAvailable`, l.minAvailable),
      maxAvailable: nonNegative(p, `${at}.maxAvailable`, l.maxAvailable),
    };
    if (s.containsValue.length > LIMITS.maxValueLength) p.add(`${at}.containsValue`, `longer than ${LIMITS.maxValueLength}`);
    maxBound(p, at, 'Available', s.minAvailable, s.maxAvailable);
    setOwn(lists, k, s);
  }
  let players: GameServerSelector['players'] = null;
  if (opts.playerAllocationFilter) {
    const minAvailable = nonNegative(p, `${path}.players.minAvailable`, w.players?.minAvailable);
    const maxAvailable = nonNegative(p, `${path}.players.maxAvailable`, w.players?.maxAvailable);
    // Agones rejects min > max even when max is 0.
    if (minAvailable > maxAvailable) p.add(`${path}.players.minAvailable`, 'cannot be greater than maxAvailable');
    players = { minAvailable, maxAvailable };
  }
  return {
    matchLabels: labelMap(p, `${path}.matchLabels`, w.matchLabels),
    // Unknown enum numbers read as READY, as Agones' converter does.
    gameServerState: w.gameServerState === 'ALLOCATED' || w.gameServerState === 1 ? 'Allocated' : 'Ready',
    players,
    counters,
    lists,
  };
}

function priority(p: FieldProblems, path: string, w: WirePriority): Priority {
  const type = w.type === 'List' || w.type === 1 ? 'List' : w.type === 'Counter' || w.type === 0 || w.type === undefined ? 'Counter' : null;
  const order = w.order === 'Descending' || w.order === 1 ? 'Descending' : w.order === 'Ascending' || w.order === 0 || w.order === undefined ? 'Ascending' : null;
  if (type === null) p.add(`${path}.type`, 'must be "Counter" or "List"');
  if (order === null) p.add(`${path}.order`, 'must be "Ascending" or "Descending"');
  if (!w.key) p.add(`${path}.key`, 'must not be empty');
  return { type: type ?? 'Counter', key: w.key ?? '', order: order ?? 'Ascending' };
}

function counterAction(p: FieldProblems, path: string, w: WireCounterAction): CounterAction {
  const action = w.action?.value ?? null;
  const amount = wrapped(p, `${path}.amount`, w.amount);
  const capacity = wrapped(p, `${path}.capacity`, w.capacity);
  if (action !== null && !COUNTER_ACTIONS.has(action)) {
    p.add(`${path}.action`, `must be "Increment" or "Decrement", got ${echo(action)}`);
  }
  if (action !== null && amount === null) p.add(`${path}.amount`, 'required when action is set');
  if (action === null && amount !== null) p.add(`${path}.action`, 'required when amount is set');
  return { action, amount, capacity };
}

function values(p: FieldProblems, path: string, v: string[] | undefined): string[] {
  const list = v ?? [];
  if (list.length > LIMITS.maxListValues) p.add(path, `at most ${LIMITS.maxListValues} values allowed, got ${list.length}`);
  else if (list.some((s) => s.length > LIMITS.maxValueLength)) p.add(path, `values may not be longer than ${LIMITS.maxValueLength}`);
  return list;
}

function listAction(p: FieldProblems, path: string, w: WireListAction): ListAction {
  const capacity = wrapped(p, `${path}.capacity`, w.capacity);
  if (capacity !== null && capacity > LIMITS.maxListCapacity) {
    p.add(`${path}.capacity`, `must be at most ${LIMITS.maxListCapacity}`);
  }
  return {
    addValues: values(p, `${path}.addValues`, w.addValues),
    capacity,
    deleteValues: values(p, `${path}.deleteValues`, w.deleteValues),
  };
}

function metaPatch(p: FieldProblems, path: string, w: WireMetaPatch): MetaPatch {
  return {
    labels: labelMap(p, `${path}.labels`, w.labels),
    annotations: annotationMap(p, `${path}.annotations`, w.annotations),
  };
}

/** Converts and validates a wire request; throws AllocationError(INVALID_FIELD) listing every problem. */
export function requestFromWire(w: WireAllocationRequest, opts: DecodeOptions): AllocationRequest {
  const p = new FieldProblems();
  const namespace = w.namespace ?? '';
  const nsProblem = namespaceProblem(namespace);
  if (nsProblem) p.add('namespace', nsProblem);

  const total =
    (w.gameServerSelectors?.length ?? 0) + (w.preferredGameServerSelectors?.length ?? 0) + (w.requiredGameServerSelector ? 1 : 0);
  if (total > LIMITS.maxSelectors) {
    p.add('gameServerSelectors', `at most ${LIMITS.maxSelectors} selectors allowed, got ${total}`);
    p.throwIfAny();
  }
  // All three selector fields are validated, as Agones does, even when one wins.
  const explicit = (w.gameServerSelectors ?? []).map((s, i) => selector(p, `gameServerSelectors[${i}]`, s, opts));
  const preferred = (w.preferredGameServerSelectors ?? []).map((s, i) => selector(p, `preferredGameServerSelectors[${i}]`, s, opts));
  const required = w.requiredGameServerSelector
    ? selector(p, 'requiredGameServerSelector', w.requiredGameServerSelector, opts)
    : selector(p, 'requiredGameServerSelector', {}, opts);
  const selectors = explicit.length > 0 ? explicit : [...preferred, required];

  if ((w.priorities?.length ?? 0) > LIMITS.maxPriorities) {
    p.add('priorities', `at most ${LIMITS.maxPriorities} priorities allowed, got ${w.priorities?.length}`);
  }
  const priorities = (w.priorities ?? []).slice(0, LIMITS.maxPriorities).map((x, i) => priority(p, `priorities[${i}]`, x));

  const counters: Record<string, CounterAction> = {};
  for (const [k, c] of boundedMap(p, 'counters', w.counters)) setOwn(counters, k, counterAction(p, keyPath('counters', k), c));
  const lists: Record<string, ListAction> = {};
  for (const [k, l] of boundedMap(p, 'lists', w.lists)) setOwn(lists, k, listAction(p, keyPath('lists', k), l));

  // `metadata` wins whenever present, even empty; `metaPatch` is its deprecated twin.
  const patch = w.metadata ? metaPatch(p, 'metadata', w.metadata) : w.metaPatch ? metaPatch(p, 'metaPatch', w.metaPatch) : EMPTY_PATCH;

  const mcs = w.multiClusterSetting;
  // Agones parses the policy selector only for a multi-cluster allocation (allocator.go); otherwise it is unused.
  const policySelector = mcs?.enabled === true ? labelMap(p, 'multiClusterSetting.policySelector.matchLabels', mcs.policySelector?.matchLabels) : EMPTY_SELECTOR;

  const scheduling = w.scheduling === 'Distributed' || w.scheduling === 1 ? 'Distributed' : 'Packed';
  p.throwIfAny();
  return {
    namespace,
    multiClusterSetting: { enabled: mcs?.enabled === true, policySelector },
    scheduling,
    selectors,
    metadata: patch,
    priorities,
    counters,
    lists,
  };
}

const EMPTY_SELECTOR: Readonly<Record<string, string>> = Object.freeze({});
const EMPTY_PATCH: MetaPatch = Object.freeze({ labels: Object.freeze({}), annotations: Object.freeze({}) });
