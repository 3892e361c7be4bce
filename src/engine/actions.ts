// What allocation does to a GameServer: metadata patch, state, counter and list actions.
import { withoutReserved } from '../allocation/reserved-annotations.ts';
import { add, sub } from '../allocation/int64.ts';
import { own, setOwn } from '../allocation/records.ts';
import type { AllocationRequest, CounterStatus, GameServer, ListStatus } from '../allocation/types.ts';

/** Annotation Agones stamps on every (re-)allocation. */
export const LAST_ALLOCATED_ANNOTATION = 'agones.dev/last-allocated';

/**
 * Agones' order (CounterAction.CounterActions → UpdateCounterCapacity, UpdateCount): a new capacity
 * first cuts the count to it; an action then moves the count and clamps it to capacity, then to 0.
 * A part the request leaves out touches nothing, even a count already above its capacity.
 */
function applyCounter(c: CounterStatus, a: AllocationRequest['counters'][string]): CounterStatus {
  let { count, capacity } = c;
  if (a.capacity !== null) {
    capacity = a.capacity;
    if (count > capacity) count = capacity;
  }
  if (a.action !== null && a.amount !== null) {
    count = a.action === 'Increment' ? add(count, a.amount) : sub(count, a.amount);
    if (count > capacity) count = capacity;
    if (count < 0) count = 0;
  }
  return { count, capacity };
}

/**
 * Agones' order (ListAction.ListActions): a new capacity truncates; additions merge without
 * duplicates (which also drops duplicates already in the list) and truncate; deletions remove
 * every occurrence. A part the request leaves out touches nothing.
 */
function applyList(l: ListStatus, a: AllocationRequest['lists'][string]): ListStatus {
  let { capacity, values } = l;
  if (a.capacity !== null) {
    capacity = a.capacity;
    if (values.length > capacity) values = values.slice(0, Number(capacity));
  }
  if (a.addValues.length > 0) {
    values = [...new Set([...values, ...a.addValues])];
    if (values.length > capacity) values = values.slice(0, Number(capacity));
  }
  if (a.deleteValues.length > 0) {
    const removed = new Set(a.deleteValues);
    values = values.filter((v) => !removed.has(v));
  }
  return { capacity, values };
}

/**
 * The GameServer after allocation. Counter/list actions on keys the GameServer lacks are
 * skipped (Agones records a warning event and still allocates).
 */
export function applyAllocation(
  gs: GameServer,
  req: AllocationRequest,
  lastAllocated: string,
  extraAnnotations: Readonly<Record<string, string>> = {},
): GameServer {
  const counters: Record<string, CounterStatus> = { ...gs.counters };
  for (const [k, a] of Object.entries(req.counters)) {
    const c = own(counters, k);
    if (c) setOwn(counters, k, applyCounter(c, a));
  }
  const lists: Record<string, ListStatus> = { ...gs.lists };
  for (const [k, a] of Object.entries(req.lists)) {
    const l = own(lists, k);
    if (l) setOwn(lists, k, applyList(l, a));
  }
  return {
    ...gs,
    labels: { ...gs.labels, ...req.metadata.labels },
    annotations: {
      // The gateway's own annotations from an earlier allocation (a re-readied GameServer) would
      // let that allocation's idempotency key return this one.
      ...withoutReserved(gs.annotations),
      ...req.metadata.annotations,
      ...extraAnnotations,
      [LAST_ALLOCATED_ANNOTATION]: lastAllocated,
    },
    state: 'Allocated',
    counters,
    lists,
  };
}
