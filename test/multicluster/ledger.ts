// The multi-cluster ledger: after a fault scenario, what each caller was told against what each
// cluster holds, name by name. A GameServer told to two callers, or two GameServers allocated for
// one request, is a double; one allocated with no caller told is an orphan, counted apart, and
// "reported" only when its request was answered as ambiguous with the request identifier the
// GameServer carries. Builds on the snapshots of test/reliability/ledger.ts.
import type { AgonesAllocatorDouble } from '../helpers/agones-allocator-double.ts';
import { LAST_ALLOCATED, snapshotMemory, type AuditedGameServer, type ClusterSnapshot } from '../reliability/ledger.ts';
import type { MemoryStore } from '../../src/cluster/memory/memory-store.ts';

export const REQUEST_ID_ANNOTATION = 'allocator-gateway.dev/request-id';

/** One cluster before and after the scenario; `name` is the target name callers are told about. */
export interface LedgerCluster {
  readonly name: string;
  readonly before: ClusterSnapshot;
  readonly after: ClusterSnapshot;
}

/** What one caller was told. */
export type Told =
  | { readonly requestId: string; readonly told: 'allocated'; readonly cluster: string; readonly gameServer: string }
  | { readonly requestId: string; readonly told: 'ambiguous'; readonly cluster: string }
  | { readonly requestId: string; readonly told: 'failed' };

export interface LedgerRow {
  readonly cluster: string;
  readonly gameServer: string;
  readonly requestId: string;
  /** Request ids of the callers told this GameServer. */
  readonly toldTo: readonly string[];
  readonly verdict: 'told' | 'double' | 'orphan-reported' | 'orphan-unreported';
}

export interface MultiClusterLedger {
  readonly rows: readonly LedgerRow[];
  readonly doubles: number;
  readonly orphansReported: number;
  readonly orphansUnreported: number;
  readonly problems: readonly string[];
}

/** The GameServers of the stand-in as the ledger sees them. */
export function snapshotDouble(d: AgonesAllocatorDouble): ClusterSnapshot {
  return new Map(d.gameServers.map((g) => [g.name, { name: g.name, state: g.state ?? 'Ready', annotations: { ...g.annotations } } satisfies AuditedGameServer]));
}

export { snapshotMemory };
export type { MemoryStore };

function newlyAllocated(c: LedgerCluster): AuditedGameServer[] {
  return [...c.after.values()].filter((g) => {
    if (g.state !== 'Allocated') return false;
    const was = c.before.get(g.name);
    return was?.state !== 'Allocated' || was.annotations[LAST_ALLOCATED] !== g.annotations[LAST_ALLOCATED];
  });
}

/** Matches callers with clusters name by name. */
export function multiClusterLedger(clusters: readonly LedgerCluster[], told: readonly Told[]): MultiClusterLedger {
  const problems: string[] = [];
  const rows: LedgerRow[] = [];
  let doubles = 0;
  let orphansReported = 0;
  let orphansUnreported = 0;
  const ambiguous = new Map(told.filter((t) => t.told === 'ambiguous').map((t) => [t.requestId, t]));
  const perRequest = new Map<string, number>();
  const toldAllocated = told.filter((t): t is Extract<Told, { told: 'allocated' }> => t.told === 'allocated');
  const matched = new Set<Told>();
  for (const c of clusters) {
    for (const g of newlyAllocated(c)) {
      const requestId = g.annotations[REQUEST_ID_ANNOTATION] ?? '';
      if (requestId !== '') perRequest.set(requestId, (perRequest.get(requestId) ?? 0) + 1);
      const to = toldAllocated.filter((t) => t.cluster === c.name && t.gameServer === g.name);
      for (const t of to) matched.add(t);
      let verdict: LedgerRow['verdict'];
      if (to.length > 1) {
        verdict = 'double';
        doubles += to.length - 1;
        problems.push(`${c.name}/${g.name} was told to ${to.length} callers (${to.map((t) => t.requestId).join(', ')})`);
      } else if (to.length === 1) {
        verdict = 'told';
      } else if (requestId !== '' && ambiguous.get(requestId)?.cluster === c.name) {
        verdict = 'orphan-reported';
        orphansReported++;
      } else {
        verdict = 'orphan-unreported';
        orphansUnreported++;
        problems.push(`${c.name}/${g.name} is Allocated (request ${requestId || 'unknown'}) and no caller was told, nor told it may be`);
      }
      rows.push({ cluster: c.name, gameServer: g.name, requestId, toldTo: to.map((t) => t.requestId), verdict });
    }
  }
  for (const [requestId, n] of perRequest) {
    if (n > 1) {
      doubles += n - 1;
      problems.push(`request ${requestId} allocated ${n} GameServers`);
    }
  }
  for (const t of toldAllocated) if (!matched.has(t)) problems.push(`caller ${t.requestId} was told ${t.cluster}/${t.gameServer}, which that cluster does not hold as newly Allocated`);
  return { rows, doubles, orphansReported, orphansUnreported, problems };
}

/** One line per row, for assertion messages. */
export function ledgerText(l: MultiClusterLedger): string {
  return [
    ...l.rows.map((r) => `${r.cluster}/${r.gameServer} request=${r.requestId || '-'} told=${r.toldTo.join(',') || '-'} ${r.verdict}`),
    `doubles=${l.doubles} orphans reported=${l.orphansReported} unreported=${l.orphansUnreported}`,
    ...l.problems,
  ].join('\n');
}
