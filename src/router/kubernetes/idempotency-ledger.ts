// The idempotency ledger in Kubernetes: one coordination.k8s.io/v1 Lease per (namespace, key
// hash), created to claim the key (creation is atomic: exactly one replica wins), then
// updated with the allocation it produced. Expired records are swept periodically.
import type { KubeConfig } from '@kubernetes/client-node';
import { parseExact, stringifyExact } from '../../allocation/exact-json.ts';
import type { Allocation } from '../../allocation/types.ts';
import { KubeHttp } from '../../cluster/kubernetes/kube-http.ts';
import { loadKubeConfig } from '../../cluster/kubernetes/kubernetes-store.ts';
import type { Claim, IdempotencyLedger } from '../idempotency.ts';

const LABEL = 'allocator-gateway.dev/idempotency';
const UNTIL = 'allocator-gateway.dev/until';
const RESULT = 'allocator-gateway.dev/result';
const REQUEST = 'allocator-gateway.dev/request';

interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number };
}

export interface KubernetesIdempotencyLedgerOptions {
  readonly kubeConfig: KubeConfig | string;
  /** How long a completed key keeps returning its allocation. */
  readonly retentionMs: number;
  /** This replica's name in claims (e.g. the pod name). */
  readonly holder: string;
  /** How often expired records are deleted; default 10 min. */
  readonly sweepMs?: number;
  readonly logger: { warn(o: object, m: string): void };
}

const leasePath = (ns: string, name?: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/leases${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
const leaseName = (hash: string) => `gw-idem-${hash}`;

export class KubernetesIdempotencyLedger implements IdempotencyLedger {
  readonly #http: KubeHttp;
  readonly #opts: KubernetesIdempotencyLedgerOptions;
  readonly #won = new Map<string, LeaseObject>();
  readonly #namespaces = new Set<string>();
  readonly #timer: NodeJS.Timeout;

  constructor(opts: KubernetesIdempotencyLedgerOptions) {
    this.#opts = opts;
    this.#http = new KubeHttp(loadKubeConfig(opts.kubeConfig));
    this.#timer = setInterval(() => void this.sweep().catch(() => {}), opts.sweepMs ?? 600_000);
    this.#timer.unref();
  }

  #fail(what: string, status: number, body: unknown): Error {
    return new Error(`${what}: HTTP ${status}: ${(body as { message?: string } | undefined)?.message ?? ''}`);
  }

  async claim(namespace: string, hash: string, holdMs: number, signal: AbortSignal, fingerprint: string): Promise<Claim> {
    this.#namespaces.add(namespace);
    const name = leaseName(hash);
    const fresh: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace, labels: { [LABEL]: 'v1', 'app.kubernetes.io/managed-by': 'allocator-gateway' }, annotations: { [UNTIL]: String(Date.now() + holdMs), [REQUEST]: fingerprint } },
      spec: { holderIdentity: this.#opts.holder, leaseDurationSeconds: Math.max(1, Math.ceil(holdMs / 1000)) },
    };
    for (let i = 0; i < 3; i++) {
      const created = await this.#http.request('POST', leasePath(namespace), { body: fresh, signal, timeoutMs: 10_000 });
      if (created.status === 201) {
        this.#won.set(`${namespace}/${hash}`, created.body as LeaseObject);
        return { kind: 'won' };
      }
      if (created.status !== 409) throw this.#fail(`create Lease ${namespace}/${name}`, created.status, created.body);
      const got = await this.#http.request('GET', leasePath(namespace, name), { signal, timeoutMs: 10_000 });
      if (got.status === 404) continue; // released meanwhile: claim again
      if (got.status !== 200) throw this.#fail(`get Lease ${namespace}/${name}`, got.status, got.body);
      const lease = got.body as LeaseObject;
      const until = Number(lease.metadata.annotations?.[UNTIL] ?? 0);
      const result = lease.metadata.annotations?.[RESULT];
      if (until >= Date.now()) {
        const recorded = lease.metadata.annotations?.[REQUEST] ?? '';
        if (result !== undefined) return { kind: 'done', allocation: parseExact(result) as Allocation, fingerprint: recorded };
        return { kind: 'pending', holder: lease.spec.holderIdentity ?? 'unknown', fingerprint: recorded };
      }
      // Expired (a crashed holder, or a result past retention): take it over, if nobody else does first.
      const next: LeaseObject = { ...fresh, metadata: { ...fresh.metadata, resourceVersion: lease.metadata.resourceVersion! } };
      const put = await this.#http.request('PUT', leasePath(namespace, name), { body: next, signal, timeoutMs: 10_000 });
      if (put.status === 200) {
        this.#won.set(`${namespace}/${hash}`, put.body as LeaseObject);
        return { kind: 'won' };
      }
      if (put.status !== 409 && put.status !== 404) throw this.#fail(`update Lease ${namespace}/${name}`, put.status, put.body);
    }
    return { kind: 'pending', holder: 'unknown', fingerprint: '' };
  }

  async complete(namespace: string, hash: string, allocation: Allocation): Promise<void> {
    const id = `${namespace}/${hash}`;
    const lease = this.#won.get(id);
    this.#won.delete(id);
    if (!lease) return;
    lease.metadata.annotations = { ...lease.metadata.annotations, [UNTIL]: String(Date.now() + this.#opts.retentionMs), [RESULT]: stringifyExact(allocation) };
    // Not tied to the caller: the result must be recorded even if the caller has gone.
    const r = await this.#http.request('PUT', leasePath(namespace, lease.metadata.name), { body: lease, timeoutMs: 10_000 });
    if (r.status !== 200) throw this.#fail(`record result in Lease ${namespace}/${lease.metadata.name}`, r.status, r.body);
  }

  async release(namespace: string, hash: string): Promise<void> {
    const id = `${namespace}/${hash}`;
    const lease = this.#won.get(id);
    this.#won.delete(id);
    if (!lease) return;
    const r = await this.#http.request('DELETE', leasePath(namespace, lease.metadata.name), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: lease.metadata.resourceVersion } },
      timeoutMs: 10_000,
    });
    if (r.status !== 200 && r.status !== 404 && r.status !== 409) throw this.#fail(`delete Lease ${namespace}/${lease.metadata.name}`, r.status, r.body);
  }

  /** Deletes expired records in the namespaces this replica has used. */
  async sweep(): Promise<number> {
    let deleted = 0;
    for (const ns of this.#namespaces) {
      const r = await this.#http.request('GET', `${leasePath(ns)}?labelSelector=${encodeURIComponent(`${LABEL}=v1`)}`, { timeoutMs: 30_000 });
      if (r.status !== 200) {
        this.#opts.logger.warn({ namespace: ns, status: r.status }, 'could not list idempotency records for sweeping');
        continue;
      }
      const now = Date.now();
      for (const lease of (r.body as { items: LeaseObject[] }).items ?? []) {
        if (Number(lease.metadata.annotations?.[UNTIL] ?? 0) >= now) continue;
        const d = await this.#http.request('DELETE', leasePath(ns, lease.metadata.name), {
          body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: lease.metadata.resourceVersion } },
        });
        if (d.status === 200) deleted++;
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#http.close();
  }
}
