// What this gateway advertises to other gateways (GatewayService.GetCapacity): Ready and
// Allocated counts per namespace, per fleet and per label pair, from the engine's index.
import { own, setOwn } from '../allocation/records.ts';
import type { GameServerSelector } from '../allocation/types.ts';
import type { GameServerIndex } from '../engine/game-server-index.ts';

export const FLEET_LABEL = 'agones.dev/fleet';

export interface StateCounts {
  readonly ready: number;
  readonly allocated: number;
}

export interface NamespaceCapacity {
  readonly total: StateCounts;
  readonly fleets: Readonly<Record<string, StateCounts>>;
  /** "key\u0000value" → counts. */
  readonly labels: ReadonlyMap<string, StateCounts>;
  /** False when labels was cut at maxLabels: a missing pair then proves nothing. */
  readonly labelsComplete: boolean;
}

/** Counts one namespace; labels cut to the `maxLabels` most common pairs. */
export function namespaceCapacity(index: GameServerIndex, namespace: string, maxLabels: number): NamespaceCapacity {
  const labels = new Map<string, { ready: number; allocated: number }>();
  const total = { ready: 0, allocated: 0 };
  for (const state of ['Ready', 'Allocated'] as const) {
    const field = state === 'Ready' ? 'ready' : 'allocated';
    for (const gs of index.all(namespace, state)) {
      if (gs.deleting) continue;
      total[field]++;
      for (const k in gs.labels) {
        const id = `${k}\u0000${gs.labels[k]}`;
        let c = labels.get(id);
        if (!c) labels.set(id, (c = { ready: 0, allocated: 0 }));
        c[field]++;
      }
    }
  }
  const fleets: Record<string, StateCounts> = {};
  for (const [id, c] of labels) if (id.startsWith(`${FLEET_LABEL}\u0000`)) setOwn(fleets, id.slice(FLEET_LABEL.length + 1), c);
  let kept: Map<string, StateCounts> = labels;
  const complete = labels.size <= maxLabels;
  if (!complete) kept = new Map([...labels].sort((a, b) => b[1].ready + b[1].allocated - (a[1].ready + a[1].allocated)).slice(0, maxLabels));
  return { total, fleets, labels: kept, labelsComplete: complete };
}

/** 'no-match' only when the counts prove no GameServer can match any selector; else 'may-match'. */
export function capacityVerdict(c: NamespaceCapacity, selectors: readonly GameServerSelector[]): 'may-match' | 'no-match' {
  for (const s of selectors) {
    const field = s.gameServerState === 'Allocated' ? 'allocated' : 'ready';
    if (c.total[field] === 0) continue;
    let possible = true;
    for (const k in s.matchLabels) {
      const v = s.matchLabels[k]!;
      const counts = k === FLEET_LABEL ? (own(c.fleets, v) ?? c.labels.get(`${k}\u0000${v}`)) : c.labels.get(`${k}\u0000${v}`);
      if (counts ? counts[field] === 0 : c.labelsComplete || k === FLEET_LABEL) {
        possible = false;
        break;
      }
    }
    // Counters, lists and players are not summarised: a selector that passes labels may match.
    if (possible) return 'may-match';
  }
  return 'no-match';
}
