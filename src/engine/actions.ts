// What allocation does to a GameServer: metadata patch, state, counter and list actions.
import { withoutReserved } from '../allocation/reserved-annotations.ts';
import type { AllocationRequest, CounterStatus, GameServer, ListStatus } from '../allocation/types.ts';

/** Annotation Agones stamps on every (re-)allocation. */
export const LAST_ALLOCATED_ANNOTATION = 'agones.dev/last-allocated';

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

function applyCounter(c: CounterStatus, a: AllocationRequest['counters'][string]): CounterStatus {
  const capacity = a.capacity ?? c.capacity;
  let count = Math.min(c.count, capacity);
  if (a.action !== null && a.amount !== null) {
    count = a.action === 'Increment' ? count + a.amount : count - a.amount;
  }
  // Agones clamps into [0, capacity] rather than failing the allocation.
  return { count: clamp(count, 0, capacity), capacity };
}

function applyList(l: ListStatus, a: AllocationRequest['lists'][string]): ListStatus {
  const capacity = a.capacity ?? l.capacity;
  const values = l.values.slice(0, capacity);
  const seen = new Set(values);
  for (const v of a.addValues) {
    if (!seen.has(v)) {
      seen.add(v);
      values.push(v);
    }
  }
  const removed = new Set(a.deleteValues);
  // Surplus additions beyond capacity are dropped, as Agones does.
  return { capacity, values: values.slice(0, capacity).filter((v) => !removed.has(v)) };
}

/**
 * The GameServer after allocation. Counter/list actions on keys the GameServer lacks are
 * skipped (Agones records a warning event and still allocates).
 */
export function applyAllocation(
  gs: GameServer,
  req: AllocationRequest,
  now: Date,
  extraAnnotations: Readonly<Record<string, string>> = {},
): GameServer {
  const counters: Record<string, CounterStatus> = { ...gs.counters };
  for (const [k, a] of Object.entries(req.counters)) {
    const c = counters[k];
    if (c) counters[k] = applyCounter(c, a);
  }
  const lists: Record<string, ListStatus> = { ...gs.lists };
  for (const [k, a] of Object.entries(req.lists)) {
    const l = lists[k];
    if (l) lists[k] = applyList(l, a);
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
      [LAST_ALLOCATED_ANNOTATION]: now.toISOString(),
    },
    state: 'Allocated',
    counters,
    lists,
  };
}
