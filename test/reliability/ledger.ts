// The ledger: every test under load ends by comparing, name by name, what callers were told (from
// the responses) with the GameServers the clusters hold, read past the gateways. auditCalls is the
// load scenarios' ledger (told twice, told but not Allocated, Allocated but untold, each counted;
// a lost reply forgiven only for a call whose own outcome was unknown); auditLedger serves the
// in-process suites, whose store the test holds. One module, used by every load test.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import { idempotencyHash } from '../../src/router/idempotency.ts';
import { clientIdentity } from '../../src/server/tls.ts';
import type { CallRecord } from './caller.ts';

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
  /** The cluster before and after the run. */
  readonly before: ClusterSnapshot;
  readonly after: ClusterSnapshot;
  /** Names callers were told, one per successful call. */
  readonly told: readonly string[];
  /** Names in the gateways' audit lines ('allocated'). */
  readonly audited?: readonly string[];
}

export interface LedgerResult {
  readonly reported: number;
  readonly newlyAllocated: number;
  /** A GameServer handed to two callers, allocated twice, or audited twice. */
  readonly doubles: number;
  /** Allocated in the cluster, no caller told. */
  readonly lost: number;
  readonly problems: readonly string[];
}

/** Compares callers, audit log and cluster name by name; doubles and lost must both be 0. */
export function auditLedger(i: LedgerInput): LedgerResult {
  const problems: string[] = [];
  const { before, after } = i;
  const newly = [...after.values()].filter((g) => g.state === 'Allocated' && before.get(g.name)?.state !== 'Allocated');
  let doubles = 0;
  // Allocated before the run and stamped again: allocated twice.
  for (const g of after.values()) {
    const was = before.get(g.name);
    if (g.state === 'Allocated' && was?.state === 'Allocated' && g.annotations[LAST_ALLOCATED] !== was.annotations[LAST_ALLOCATED]) {
      doubles++;
      problems.push(`${g.name} was Allocated before the run and allocated again`);
    }
  }
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
  const lost = unexplained.length;
  if (lost > 0) problems.push(`${lost} Allocated without a caller told: ${unexplained.slice(0, 5).map((g) => g.name).join(', ')}`);
  if (i.audited) {
    const dup = i.audited.length - new Set(i.audited).size;
    if (dup > 0) {
      doubles += dup;
      problems.push(`${dup} GameServer names audited twice`);
    }
    if (i.audited.length !== newly.length) problems.push(`${i.audited.length} audit lines for ${newly.length} allocations`);
    const set = new Set(i.audited);
    for (const g of newly) if (!set.has(g.name)) problems.push(`${g.name} is Allocated but no gateway audited it`);
  }
  return { reported: i.told.length, newlyAllocated: newly.length, doubles, lost, problems };
}

/** Audit lines of allocations in captured gateway logs. */
export function auditLines(logs: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return logs.filter((l) => l.audit === true && l.outcome === 'OK' && typeof l.gameServer === 'string');
}

/** Names of the 'allocated' audit lines in captured gateway logs. */
export function auditedNames(logs: readonly Record<string, unknown>[]): string[] {
  return auditLines(logs).map((l) => l.gameServer as string);
}

/** The identity the gateway derives from a client certificate (SAN URI, else SAN DNS, else CN). */
export function identityOfCert(certFile: string): string | null {
  const x = new X509Certificate(readFileSync(certFile));
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1];
  return clientIdentity({ subjectaltname: x.subjectAltName ?? '', subject: { CN: cn } } as never);
}

export interface CallLedger extends LedgerResult {
  /** Allocated, reply lost, explained by a call whose own outcome was unknown. */
  readonly reclaimable: number;
  /** Calls told a name. */
  readonly told: number;
  /** Told a name the cluster does not hold as Allocated (by that allocation). */
  readonly toldNotAllocated: number;
  /** Allocated in the cluster with no caller told and no call of unknown outcome to explain it. */
  readonly allocatedUntold: number;
  /** Calls whose own outcome was unknown to their caller. */
  readonly unknownCalls: number;
}

/**
 * The ledger by name: what each caller was told (from the responses) against the GameServers the
 * cluster holds, read independently of the gateway. Told twice, told but not Allocated, and
 * Allocated but untold are each counted and listed; an untold allocation is forgiven only when its
 * idempotency annotation names a call whose own outcome was unknown (its reply lost in flight),
 * and each such call explains one allocation at most. With re-readied GameServers (soak) an
 * allocation is a name plus its last-allocated stamp; `events` lists those the cluster made.
 */
export function auditCalls(i: {
  /** Each call; `identity` when its client certificate differs from the run's. */
  readonly calls: readonly (Pick<CallRecord, 'key' | 'name' | 'allocatedAt' | 'outcome'> & { readonly identity?: string | null })[];
  readonly namespace: string;
  readonly identity: string | null;
  readonly before?: ClusterSnapshot;
  readonly after?: ClusterSnapshot;
  /** Re-readied runs: every allocation the cluster made (name, stamp, idempotency annotation). */
  readonly events?: readonly AllocationEvent[];
}): CallLedger {
  const problems: string[] = [];
  const reReadied = i.events !== undefined;
  const before = i.before ?? new Map<string, AuditedGameServer>();
  const after = i.after ?? new Map<string, AuditedGameServer>();
  const id = (name: string, stamp: string | undefined) => (reReadied ? `${name}|${stamp ?? ''}` : name);
  // What the cluster made during the run.
  const made = new Map<string, AllocationEvent>();
  if (i.events) for (const e of i.events) made.set(id(e.name, e.stamp), e);
  else {
    for (const g of after.values()) {
      const was = before.get(g.name);
      if (g.state !== 'Allocated') continue;
      if (was?.state === 'Allocated' && was.annotations[LAST_ALLOCATED] === g.annotations[LAST_ALLOCATED]) continue;
      made.set(g.name, { name: g.name, stamp: g.annotations[LAST_ALLOCATED] ?? '', key: g.annotations[IDEMPOTENCY_ANNOTATION] ?? '' });
      if (was?.state === 'Allocated') problems.push(`${g.name} was Allocated before the run and allocated again`);
    }
  }
  const hashOf = (c: { key: string; identity?: string | null }) => idempotencyHash(i.namespace, c.identity !== undefined ? c.identity : i.identity, c.key);
  const byHash = new Map(i.calls.map((c) => [hashOf(c), c]));
  const told = i.calls.filter((c) => c.outcome === 'told' && c.name !== undefined);
  const times = new Map<string, string[]>();
  for (const c of told) times.set(id(c.name!, c.allocatedAt), [...(times.get(id(c.name!, c.allocatedAt)) ?? []), c.key]);
  let toldTwice = 0;
  for (const [n, keys] of times) {
    if (keys.length > 1) {
      toldTwice += keys.length - 1;
      problems.push(`${n} was told to ${keys.length} callers: ${keys.slice(0, 4).join(', ')}`);
    }
  }
  let toldNotAllocated = 0;
  for (const c of told) {
    const e = made.get(id(c.name!, c.allocatedAt));
    if (!e) {
      toldNotAllocated++;
      if (toldNotAllocated <= 5) problems.push(`${c.key} was told ${c.name}${reReadied ? ` (${c.allocatedAt})` : ''}, which the cluster ${reReadied ? 'never allocated so' : `holds as ${after.get(c.name!)?.state ?? 'absent'}`}`);
    } else if (e.key && e.key !== hashOf(c)) {
      toldTwice++;
      problems.push(`${c.key} was told ${c.name}, which the cluster allocated for another call's key`);
    }
  }
  let allocatedUntold = 0;
  let forgiven = 0;
  const used = new Set<string>();
  for (const [n, e] of made) {
    if (times.has(n)) continue;
    const call = e.key ? byHash.get(e.key) : undefined;
    if (call && call.outcome === 'unknown' && !used.has(call.key)) {
      used.add(call.key);
      forgiven++;
      continue;
    }
    allocatedUntold++;
    if (allocatedUntold <= 5) problems.push(`${n} is Allocated but no caller was told: ${call ? `its call ${call.key} was ${call.outcome === 'unknown' ? 'already forgiven once' : call.outcome}` : 'no call of this run carries its key'}`);
  }
  if (toldNotAllocated > 5) problems.push(`… ${toldNotAllocated} told but not Allocated in all`);
  if (allocatedUntold > 5) problems.push(`… ${allocatedUntold} Allocated but untold in all`);
  const unknownCalls = i.calls.filter((c) => c.outcome === 'unknown').length;
  return {
    reported: told.length, newlyAllocated: made.size, doubles: toldTwice, lost: allocatedUntold + toldNotAllocated, reclaimable: forgiven,
    problems, told: told.length, toldNotAllocated, allocatedUntold, unknownCalls,
  };
}

/** One allocation the cluster made: its GameServer, last-allocated stamp and idempotency annotation. */
export interface AllocationEvent {
  readonly name: string;
  readonly stamp: string;
  readonly key: string;
}
