// Candidate ordering: Packed (fill busy nodes first) and priorities on counter/list room.
import { compare, sub, type Int64 } from '../allocation/int64.ts';
import { own } from '../allocation/records.ts';
import type { NodeCounts } from '../cluster/store.ts';
import type { GameServer, Priority } from '../allocation/types.ts';

export type { NodeCounts } from '../cluster/store.ts';

function room(gs: GameServer, p: Priority): Int64 | undefined {
  if (p.type === 'Counter') {
    const c = own(gs.counters, p.key);
    return c ? sub(c.capacity, c.count) : undefined;
  }
  const l = own(gs.lists, p.key);
  return l ? sub(l.capacity, l.values.length) : undefined;
}

/** Negative when a comes first. Ascending = least room first; a GameServer with the key precedes one without. */
export function comparePriorities(a: GameServer, b: GameServer, priorities: readonly Priority[]): number {
  for (const p of priorities) {
    const ra = room(a, p);
    const rb = room(b, p);
    if (ra === undefined && rb === undefined) continue;
    if (ra === undefined) return 1;
    if (rb === undefined) return -1;
    if (ra !== rb) return p.order === 'Ascending' ? compare(ra, rb) : compare(rb, ra);
  }
  return 0;
}

function byName(a: GameServer, b: GameServer): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Packed: Allocated first, busier nodes first, then least player room, priorities, name. */
export function comparePacked(
  a: GameServer,
  b: GameServer,
  nodes: NodeCounts,
  priorities: readonly Priority[],
  playerAllocationFilter: boolean,
): number {
  if (a.state !== b.state) {
    if (a.state === 'Allocated') return -1;
    if (b.state === 'Allocated') return 1;
  }
  if (a.nodeName !== b.nodeName) {
    const d = nodes.allocatedOn(b.nodeName) - nodes.allocatedOn(a.nodeName);
    if (d !== 0) return d;
    const r = nodes.readyOn(b.nodeName) - nodes.readyOn(a.nodeName);
    if (r !== 0) return r;
  }
  if (playerAllocationFilter && a.players && b.players) {
    const d = compare(sub(a.players.capacity, a.players.count), sub(b.players.capacity, b.players.count));
    if (d !== 0) return d;
  }
  return comparePriorities(a, b, priorities) || byName(a, b);
}

/** Distributed with priorities: deterministic, priorities then name only. */
export function compareDistributed(a: GameServer, b: GameServer, priorities: readonly Priority[]): number {
  return comparePriorities(a, b, priorities) || byName(a, b);
}
