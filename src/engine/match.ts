// Does a GameServer satisfy a selector? (Agones' matching rules, one function per part.)
import { sub, type Int64 } from '../allocation/int64.ts';
import { own } from '../allocation/records.ts';
import type { GameServer, GameServerSelector } from '../allocation/types.ts';

function labelsMatch(gs: GameServer, want: Readonly<Record<string, string>>): boolean {
  for (const k in want) if (own(gs.labels, k) !== want[k]) return false;
  return true;
}

/** A max of 0 means unbounded. */
function within(value: Int64, min: Int64, max: Int64): boolean {
  return value >= min && (max === 0 || value <= max);
}

/** True when gs may be allocated by this selector. */
export function matches(gs: GameServer, s: GameServerSelector): boolean {
  if (gs.deleting || gs.state !== s.gameServerState) return false;
  if (!labelsMatch(gs, s.matchLabels)) return false;
  // Players are checked only when a maximum is asked for and the GameServer tracks players.
  if (s.players && s.players.maxAvailable !== 0 && gs.players) {
    if (!within(sub(gs.players.capacity, gs.players.count), s.players.minAvailable, s.players.maxAvailable)) return false;
  }
  for (const k in s.counters) {
    const want = s.counters[k]!;
    const c = own(gs.counters, k);
    if (!c) return false;
    if (!within(sub(c.capacity, c.count), want.minAvailable, want.maxAvailable)) return false;
    if (!within(c.count, want.minCount, want.maxCount)) return false;
  }
  for (const k in s.lists) {
    const want = s.lists[k]!;
    const l = own(gs.lists, k);
    if (!l) return false;
    if (!within(sub(l.capacity, l.values.length), want.minAvailable, want.maxAvailable)) return false;
    if (want.containsValue !== '' && !l.values.includes(want.containsValue)) return false;
  }
  return true;
}
