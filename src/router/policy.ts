// GameServerAllocationPolicy (multicluster.agones.dev/v1) as the router sees it, read from a
// Kubernetes object or a YAML document of the same shape. Problems are reported by path.
import { own, setOwn } from '../allocation/records.ts';

/** One policy's destination: this cluster (no endpoints) or remote allocators. */
export interface AllocationPolicy {
  /** metadata.name. */
  readonly name: string;
  /** metadata.namespace: the namespace whose requests the policy routes. */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Lower is tried first. */
  readonly priority: number;
  /** Relative chance inside a priority tier; 0 = never picked. */
  readonly weight: number;
  readonly clusterName: string;
  /** host[:port] as written; null = the local cluster. */
  readonly allocationEndpoints: readonly string[] | null;
  /** Secret (tls.crt, tls.key, optional ca.crt) in the policy's namespace; "" = none. */
  readonly secretName: string;
  /** Namespace to allocate in on the target. */
  readonly targetNamespace: string;
  /** PEM CA bundle of the remote allocators; "" = none. */
  readonly serverCa: string;
}

export const POLICY_API_VERSION = 'multicluster.agones.dev/v1';
export const POLICY_KIND = 'GameServerAllocationPolicy';

/** A policy object that cannot be used, with every problem. */
export interface PolicyProblem {
  readonly name: string;
  readonly namespace: string;
  readonly problems: readonly string[];
}

export type ParsedPolicy = { ok: true; policy: AllocationPolicy } | { ok: false; problem: PolicyProblem };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') setOwn(out, k, x);
  return out;
}

function int(v: unknown): number | null {
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) ? n : null;
}

/** serverCa is base64 in the object (format: byte); a PEM string is accepted too (YAML written by hand). */
function decodeServerCa(v: unknown, problems: string[]): string {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v !== 'string') {
    problems.push('spec.connectionInfo.serverCa: must be a string (base64 of a PEM bundle)');
    return '';
  }
  const pem = v.includes('-----BEGIN') ? v : Buffer.from(v, 'base64').toString('utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push('spec.connectionInfo.serverCa: only PEM format is accepted for server CA');
    return '';
  }
  return pem;
}

/**
 * Reads one GameServerAllocationPolicy object. `defaultNamespace` applies when the object
 * names none (static files).
 */
export function parsePolicy(obj: unknown, defaultNamespace = ''): ParsedPolicy {
  const o = isObject(obj) ? obj : {};
  const meta = isObject(o.metadata) ? o.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : defaultNamespace;
  const problems: string[] = [];
  if (!isObject(obj)) problems.push('(object): must be a mapping');
  if (name === '') problems.push('metadata.name: required');
  if (namespace === '') problems.push('metadata.namespace: required');
  if (o.apiVersion !== undefined && o.apiVersion !== POLICY_API_VERSION) problems.push(`apiVersion: must be ${POLICY_API_VERSION}`);
  if (o.kind !== undefined && o.kind !== POLICY_KIND) problems.push(`kind: must be ${POLICY_KIND}`);
  const spec = isObject(o.spec) ? o.spec : {};
  if (!isObject(o.spec)) problems.push('spec: required');
  const priority = int(spec.priority);
  if (priority === null || priority < 0 || priority > 2_147_483_647) problems.push('spec.priority: required, an integer >= 0');
  const weight = int(spec.weight);
  if (weight === null || weight < 0) problems.push('spec.weight: required, an integer >= 0');
  const ci = isObject(spec.connectionInfo) ? spec.connectionInfo : null;
  if (ci === null) problems.push('spec.connectionInfo: required');
  const c = ci ?? {};
  let endpoints: string[] | null = null;
  if (c.allocationEndpoints !== undefined && c.allocationEndpoints !== null) {
    if (!Array.isArray(c.allocationEndpoints) || c.allocationEndpoints.some((e) => typeof e !== 'string')) {
      problems.push('spec.connectionInfo.allocationEndpoints: must be a list of strings');
    } else if (c.allocationEndpoints.length === 0) {
      problems.push('spec.connectionInfo.allocationEndpoints: must hold at least one endpoint when present (omit it for the local cluster)');
    } else {
      endpoints = c.allocationEndpoints as string[];
    }
  }
  const targetNamespace = typeof c.namespace === 'string' ? c.namespace : '';
  if (ci !== null && targetNamespace === '') problems.push('spec.connectionInfo.namespace: required');
  const serverCa = decodeServerCa(c.serverCa, problems);
  if (problems.length > 0) return { ok: false, problem: { name: name || '(unnamed)', namespace, problems } };
  return {
    ok: true,
    policy: {
      name,
      namespace,
      labels: stringMap(meta.labels),
      priority: priority!,
      weight: weight!,
      clusterName: typeof c.clusterName === 'string' ? c.clusterName : '',
      allocationEndpoints: endpoints,
      secretName: typeof c.secretName === 'string' ? c.secretName : '',
      targetNamespace,
      serverCa,
    },
  };
}

/** Policies whose labels carry every pair of the request's policySelector (empty = all). */
export function selectPolicies(policies: readonly AllocationPolicy[], selector: Readonly<Record<string, string>>): AllocationPolicy[] {
  return policies.filter((p) => {
    for (const k in selector) if (own(p.labels, k) !== selector[k]) return false;
    return true;
  });
}

/** The name a target goes by in reports, logs and metrics: clusterName, else the policy name. */
export function targetName(p: AllocationPolicy): string {
  return p.clusterName !== '' ? p.clusterName : p.allocationEndpoints === null ? 'local' : p.name;
}
