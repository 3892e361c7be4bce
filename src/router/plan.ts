// The route plan: which targets a multi-cluster request tries, in which order. Ascending
// priority tiers; inside a tier a weighted random order (each policy its own target, even when
// clusterNames repeat). Misconfigured policies stay in the plan, marked, so they are reported.
import { createHash } from 'node:crypto';
import { targetName, type AllocationPolicy } from './policy.ts';

/** One destination in the order it will be tried. */
export interface PlanTarget {
  readonly policy: AllocationPolicy;
  /** Name in reports, logs and metrics (clusterName, else policy name / "local"). */
  readonly name: string;
  readonly kind: 'local' | 'remote';
  /** Normalised host:port endpoints (remote), in policy order. */
  readonly endpoints: readonly string[];
  /** Why this target cannot be used; null when it can. */
  readonly problem: string | null;
}

export interface RoutePlan {
  readonly targets: readonly PlanTarget[];
  /** True when a weighted pick between several candidates decided part of the order. */
  readonly randomized: boolean;
}

/** "host:port" as Agones dials it: ":443" appended when no port is given. Null when malformed. */
export function normaliseEndpoint(raw: string): string | null {
  const e = raw.trim();
  if (e === '' || /\s|\/|@|\?|#/.test(e)) return null;
  let host: string;
  let port: string | undefined;
  if (e.startsWith('[')) {
    const close = e.indexOf(']');
    if (close < 0) return null;
    host = e.slice(0, close + 1);
    const rest = e.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return null;
    port = rest === '' ? undefined : rest.slice(1);
  } else {
    const parts = e.split(':');
    if (parts.length > 2) return null;
    host = parts[0]!;
    port = parts[1];
  }
  if (host === '' || host === '[]') return null;
  if (port === undefined) return `${host}:443`;
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) return null;
  return `${host}:${Number(port)}`;
}

/** A seeded PRNG (mulberry32): replicas given the same seed draw the same order. */
export function seededRandom(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function target(p: AllocationPolicy, problem: string | null): PlanTarget {
  if (p.allocationEndpoints === null) return { policy: p, name: targetName(p), kind: 'local', endpoints: [], problem };
  const endpoints: string[] = [];
  const bad: string[] = [];
  for (const raw of p.allocationEndpoints) {
    const e = normaliseEndpoint(raw);
    if (e === null) bad.push(JSON.stringify(raw));
    else if (!endpoints.includes(e)) endpoints.push(e);
  }
  const endpointProblem = bad.length > 0 ? `policy ${p.namespace}/${p.name}: bad allocationEndpoints ${bad.join(', ')} (want host or host:port)` : null;
  return { policy: p, name: targetName(p), kind: 'remote', endpoints, problem: problem ?? endpointProblem };
}

/**
 * Orders the policies into a plan. `random` in [0, 1) drives the weighted picks (pass
 * seededRandom(key) for a deterministic order).
 */
export function planRoute(policies: readonly AllocationPolicy[], random: () => number = Math.random): RoutePlan {
  const tiers = new Map<number, AllocationPolicy[]>();
  for (const p of policies) {
    let t = tiers.get(p.priority);
    if (!t) tiers.set(p.priority, (t = []));
    t.push(p);
  }
  const out: PlanTarget[] = [];
  let randomized = false;
  for (const priority of [...tiers.keys()].sort((a, b) => a - b)) {
    // Stable input order regardless of the source's listing order.
    const tier = tiers.get(priority)!.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const weighted = tier.filter((p) => p.weight > 0);
    if (weighted.length === 0) {
      const names = tier.map((p) => `${p.namespace}/${p.name}`).join(', ');
      for (const p of tier) {
        out.push(target(p, `policy ${p.namespace}/${p.name}: every policy of priority ${priority} has weight 0 (${names}); the tier cannot be used: give at least one a weight > 0`));
      }
      continue;
    }
    if (weighted.length > 1) randomized = true;
    const left = [...weighted];
    while (left.length > 0) {
      const total = left.reduce((s, p) => s + p.weight, 0);
      let r = random() * total;
      let i = 0;
      for (; i < left.length - 1; i++) {
        r -= left[i]!.weight;
        if (r < 0) break;
      }
      out.push(target(left[i]!, null));
      left.splice(i, 1);
    }
    // Weight 0 next to positive weights disables a policy, as in Agones: never tried, not an error.
  }
  return { targets: out, randomized };
}
