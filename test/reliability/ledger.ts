// The ledger: every test under load ends by comparing what callers were told with what the
// clusters hold. Allocations reported = GameServers newly Allocated; no name twice; no
// GameServer Allocated without a caller told, unless its reply was lost and it is reclaimable
// through the idempotency key it was allocated with (a retry with that key returns it and
// allocates nothing new). One module, used by every load test.
import type { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import { idempotencyHash } from '../../src/router/idempotency.ts';

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
  /** The clusters before and after the run (omit when only counts are known: see newlyAllocated). */
  readonly before?: ClusterSnapshot;
  readonly after?: ClusterSnapshot;
  /**
   * How many allocations the clusters made, when they can only be counted: a GetCapacity
   * difference, or Ready→Allocated transitions seen while GameServers were re-readied (soak).
   */
  readonly newlyAllocated?: number;
  /** GameServers were re-readied during the run, so one name may legitimately be allocated again. */
  readonly reReadied?: boolean;
  /** Names callers were told, one per successful call (a key's repeats listed once). */
  readonly told?: readonly string[];
  /** When callers' names are unknown (ghz): how many calls succeeded. */
  readonly toldCount?: number;
  /** Names in the gateways' audit lines ('allocated'). */
  readonly audited?: readonly string[];
  /** Allocations whose lost replies were reclaimed through their idempotency keys (see replayAuditedKeys). */
  readonly reclaimed?: number;
}

export interface LedgerResult {
  readonly reported: number;
  readonly newlyAllocated: number;
  /** A GameServer handed to two callers (or more calls told than allocations made). */
  readonly doubles: number;
  /** Allocated in a cluster, no caller told, not reclaimed. */
  readonly lost: number;
  /** Allocated, reply lost, returned again through its idempotency key. */
  readonly reclaimable: number;
  readonly problems: readonly string[];
}

/** Compares callers, audit log and clusters; doubles and lost must both be 0. */
export function auditLedger(i: LedgerInput): LedgerResult {
  const problems: string[] = [];
  const before = i.before ?? new Map<string, AuditedGameServer>();
  const after = i.after ?? new Map<string, AuditedGameServer>();
  const newly = [...after.values()].filter((g) => g.state === 'Allocated' && before.get(g.name)?.state !== 'Allocated');
  let doubles = 0;
  if (!i.reReadied) {
    // Allocated before the run and stamped again: allocated twice.
    for (const g of after.values()) {
      const was = before.get(g.name);
      if (g.state === 'Allocated' && was?.state === 'Allocated' && g.annotations[LAST_ALLOCATED] !== was.annotations[LAST_ALLOCATED]) {
        doubles++;
        problems.push(`${g.name} was Allocated before the run and allocated again`);
      }
    }
  }
  const newlyAllocated = i.newlyAllocated ?? newly.length;
  const reported = i.told?.length ?? i.toldCount ?? 0;
  let reclaimable = Math.max(0, i.reclaimed ?? 0);
  let lost = 0;
  if (i.told && !i.reReadied && i.after) {
    // Names known on both sides: match them one by one.
    const seen = new Map<string, number>();
    for (const n of i.told) seen.set(n, (seen.get(n) ?? 0) + 1);
    for (const [n, c] of seen) {
      if (c > 1) {
        doubles += c - 1;
        problems.push(`${n} was handed to ${c} callers`);
      }
      if (after.get(n)?.state !== 'Allocated') problems.push(`${n} was reported allocated but the cluster holds it as ${after.get(n)?.state ?? 'absent'}`);
    }
    const unexplained = newly.filter((g) => !seen.has(g.name));
    const reclaim = Math.min(reclaimable, unexplained.length);
    reclaimable = reclaim;
    lost = unexplained.length - reclaim;
    if (lost > 0) problems.push(`${lost} Allocated without a caller told: ${unexplained.slice(0, 5).map((g) => g.name).join(', ')}`);
  } else {
    if (reported > newlyAllocated) {
      doubles += reported - newlyAllocated;
      problems.push(`${reported} calls told, only ${newlyAllocated} allocations made`);
    }
    const unexplained = Math.max(0, newlyAllocated - reported);
    reclaimable = Math.min(reclaimable, unexplained);
    lost = unexplained - reclaimable;
    if (lost > 0) problems.push(`${newlyAllocated} allocations made, ${reported} calls told, ${reclaimable} reclaimed through their keys`);
  }
  if (i.audited) {
    if (!i.reReadied) {
      const dup = i.audited.length - new Set(i.audited).size;
      if (dup > 0) {
        doubles += dup;
        problems.push(`${dup} GameServer names audited twice`);
      }
    }
    if (i.audited.length !== newlyAllocated) problems.push(`${i.audited.length} audit lines for ${newlyAllocated} allocations`);
    if (i.after && !i.reReadied) {
      const set = new Set(i.audited);
      for (const g of newly) if (!set.has(g.name)) problems.push(`${g.name} is Allocated but no gateway audited it`);
    }
  }
  return { reported, newlyAllocated, doubles, lost, reclaimable, problems };
}

/** Audit lines of allocations in captured gateway logs. */
export function auditLines(logs: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return logs.filter((l) => l.audit === true && l.outcome === 'OK' && typeof l.gameServer === 'string');
}

/** Names of the 'allocated' audit lines in captured gateway logs. */
export function auditedNames(logs: readonly Record<string, unknown>[]): string[] {
  return auditLines(logs).map((l) => l.gameServer as string);
}

/** Waits until a child gateway's audit lines stop arriving (its log stream is asynchronous). */
export async function settledAudit(logs: readonly Record<string, unknown>[], quietMs = 500, maxMs = 30_000): Promise<void> {
  const end = Date.now() + maxMs;
  let last = -1;
  while (Date.now() < end) {
    const n = logs.length;
    if (n === last) return;
    last = n;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

/**
 * Replays the idempotency key of every audited allocation (keys are `<prefix>-<n>`, as the load
 * generators send them) and counts those that return the same GameServer. A lost reply is
 * reclaimable exactly when its replay returns it; the caller checks that replays allocated nothing new.
 */
export async function replayAuditedKeys(
  logs: readonly Record<string, unknown>[],
  allocate: (key: string) => Promise<string | null>,
  namespace: string,
  prefixes: readonly { prefix: string; count: number }[],
): Promise<{ lines: number; matched: number }> {
  const lines = auditLines(logs).filter((l) => typeof l.idempotencyKey === 'string');
  const byHash = new Map<string, string>();
  for (const identity of new Set(lines.map((l) => l.identity as string | null))) {
    for (const { prefix, count } of prefixes) for (let i = 0; i < count + 10; i++) byHash.set(idempotencyHash(namespace, identity, `${prefix}-${i}`), `${prefix}-${i}`);
  }
  let matched = 0;
  const queue = [...lines];
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let l = queue.pop(); l; l = queue.pop()) {
      const key = byHash.get(l.idempotencyKey as string);
      if (key && (await allocate(key).catch(() => null)) === l.gameServer) matched++;
    }
  }));
  return { lines: lines.length, matched };
}
