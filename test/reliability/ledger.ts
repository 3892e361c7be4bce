// The ledger: every test under load ends by comparing what callers were told with what the
// clusters hold. Allocations reported = GameServers newly Allocated; no name twice; no
// GameServer Allocated without a caller told, unless its reply was lost and it is reclaimable
// through the idempotency key it carries (a retry with that key returns it).
import type { MemoryStore } from '../../src/cluster/memory/memory-store.ts';

/** One GameServer as the audit sees it. */
export interface AuditedGameServer {
  readonly name: string;
  readonly state: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/** GameServers of one or more clusters by name (tests give clusters distinct name prefixes). */
export type ClusterSnapshot = ReadonlyMap<string, AuditedGameServer>;

export const IDEMPOTENCY_ANNOTATION = 'allocator-gateway.dev/idempotency-key';
export const LAST_ALLOCATED = 'agones.dev/last-allocated';

export function snapshotMemory(store: MemoryStore): ClusterSnapshot {
  return new Map(store.list().map((g) => [g.name, { name: g.name, state: g.state, annotations: g.annotations }]));
}

/** From Kubernetes list objects ({items}) of one or more clusters. */
export function snapshotItems(...lists: { items: { metadata: { name: string; annotations?: Record<string, string> }; status?: { state?: string } }[] }[]): ClusterSnapshot {
  const m = new Map<string, AuditedGameServer>();
  for (const l of lists) for (const o of l.items) m.set(o.metadata.name, { name: o.metadata.name, state: o.status?.state ?? '', annotations: o.metadata.annotations ?? {} });
  return m;
}

export interface LedgerInput {
  readonly before: ClusterSnapshot;
  readonly after: ClusterSnapshot;
  /** Names callers were told, one per successful call (repeats of one idempotency key listed once). */
  readonly told?: readonly string[];
  /** When callers' names are unknown (ghz): how many calls succeeded. */
  readonly toldCount?: number;
  /** Names in the gateways' audit lines ('allocated'), cross-checked against the cluster. */
  readonly audited?: readonly string[];
  /** Idempotency hashes whose callers retried until told (their GameServers are reclaimable). */
  readonly retriedKeys?: ReadonlySet<string>;
  /**
   * Ready→Allocated transitions seen by a watch, for runs that re-ready GameServers (soak):
   * replaces the before/after difference as the count of allocations the clusters made.
   */
  readonly transitions?: number;
}

export interface LedgerResult {
  readonly reported: number;
  readonly newlyAllocated: number;
  /** A GameServer handed to two callers (or to more calls than the clusters allocated). */
  readonly doubles: number;
  /** Allocated in a cluster, no caller told, not reclaimable. */
  readonly lost: number;
  /** Allocated, reply lost, but carrying an idempotency key a retry returns. */
  readonly reclaimable: number;
  readonly problems: readonly string[];
}

/** Compares callers, audit log and clusters; doubles and lost must both be 0. */
export function auditLedger(i: LedgerInput): LedgerResult {
  const problems: string[] = [];
  const newly = [...i.after.values()].filter((g) => g.state === 'Allocated' && i.before.get(g.name)?.state !== 'Allocated');
  // A GameServer that was Allocated before and got a new last-allocated stamp was re-allocated.
  const reAllocated = [...i.after.values()].filter(
    (g) => g.state === 'Allocated' && i.before.get(g.name)?.state === 'Allocated' && g.annotations[LAST_ALLOCATED] !== i.before.get(g.name)?.annotations[LAST_ALLOCATED],
  );
  for (const g of reAllocated) problems.push(`${g.name} was Allocated before the run and allocated again`);
  const newlyAllocated = i.transitions ?? newly.length;
  let doubles = reAllocated.length;
  let lost = 0;
  let reclaimable = 0;
  let reported: number;
  if (i.told) {
    reported = i.told.length;
    const seen = new Map<string, number>();
    for (const n of i.told) seen.set(n, (seen.get(n) ?? 0) + 1);
    for (const [n, c] of seen) {
      if (c > 1 && i.transitions === undefined) {
        doubles += c - 1;
        problems.push(`${n} was handed to ${c} callers`);
      }
      const g = i.after.get(n);
      if (i.transitions === undefined && g?.state !== 'Allocated') problems.push(`${n} was reported allocated but the cluster holds it as ${g?.state ?? 'absent'}`);
    }
    if (i.transitions === undefined) {
      for (const g of newly) {
        if (seen.has(g.name)) continue;
        const key = g.annotations[IDEMPOTENCY_ANNOTATION];
        if (key !== undefined && (i.retriedKeys === undefined || i.retriedKeys.has(key))) {
          reclaimable++;
          continue;
        }
        lost++;
        problems.push(`${g.name} is Allocated but no caller was told`);
      }
    } else {
      if (reported > newlyAllocated) doubles += reported - newlyAllocated;
      if (newlyAllocated > reported) lost += newlyAllocated - reported;
    }
  } else {
    reported = i.toldCount ?? 0;
    const keyed = newly.filter((g) => g.annotations[IDEMPOTENCY_ANNOTATION] !== undefined).length;
    if (reported > newlyAllocated) {
      doubles += reported - newlyAllocated;
      problems.push(`${reported} calls succeeded but only ${newlyAllocated} GameServers were newly Allocated`);
    }
    if (newlyAllocated > reported) {
      const unexplained = newlyAllocated - reported;
      reclaimable = Math.min(unexplained, keyed);
      lost = unexplained - reclaimable;
      if (lost > 0) problems.push(`${newlyAllocated} GameServers newly Allocated but only ${reported} calls were told`);
    }
  }
  if (i.audited) {
    const auditedSet = new Set(i.audited);
    if (auditedSet.size !== i.audited.length && i.transitions === undefined) {
      const extra = i.audited.length - auditedSet.size;
      doubles += extra;
      problems.push(`${extra} GameServer names appear twice in the audit log`);
    }
    if (i.transitions === undefined) {
      for (const g of newly) if (!auditedSet.has(g.name)) problems.push(`${g.name} is Allocated but no gateway audited it`);
    } else if (i.audited.length !== newlyAllocated) {
      problems.push(`${i.audited.length} audit lines for ${newlyAllocated} allocations`);
    }
  }
  return { reported, newlyAllocated, doubles, lost, reclaimable, problems };
}

/** Names of the 'allocated' audit lines in captured gateway logs. */
export function auditedNames(logs: readonly Record<string, unknown>[]): string[] {
  return logs.filter((l) => l.audit === true && l.outcome === 'OK' && typeof l.gameServer === 'string').map((l) => l.gameServer as string);
}
