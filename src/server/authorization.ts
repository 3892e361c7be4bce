// Per-client authorization: which verified client identity ("uri:…", "dns:…" or "cn:…": the
// certificate's first SAN URI, else SAN DNS, else subject CN, with its kind)
// may allocate in which namespaces, and whether it may ask for multi-cluster forwarding.
// 'open' (default, as agones-allocator): identities without an entry may do anything, listed
// ones are held to their entry. 'enforce': identities without an entry are refused.
import { AllocationError } from '../allocation/errors.ts';

/** What one client identity may do. */
export interface ClientGrant {
  /** Namespaces it may allocate in; '*' = any. */
  readonly namespaces: readonly string[];
  /** May set multiClusterSetting.enabled (forwarding to remote allocators). */
  readonly multiCluster: boolean;
}

export interface AuthorizationOptions {
  readonly mode: 'open' | 'enforce';
  /** identity → grant. */
  readonly clients: Readonly<Record<string, ClientGrant>>;
}

export class Authorizer {
  readonly #o: AuthorizationOptions;

  constructor(opts: AuthorizationOptions) {
    this.#o = opts;
  }

  get mode(): 'open' | 'enforce' {
    return this.#o.mode;
  }

  /** Throws PERMISSION_DENIED unless `identity` may use the gateway at all (e.g. GatewayService). */
  checkKnown(identity: string | null): void {
    if (this.#o.mode === 'open') return;
    if (identity === null || !Object.hasOwn(this.#o.clients, identity)) throw this.#denied(identity, 'is not listed in authorization.clients');
  }

  /** Whether `identity` may act in `namespace` (allocate there, read its capacity or routes). */
  mayUse(identity: string | null, namespace: string): boolean {
    const grant = identity !== null && Object.hasOwn(this.#o.clients, identity) ? this.#o.clients[identity] : undefined;
    if (!grant) return this.#o.mode === 'open';
    return grant.namespaces.includes('*') || grant.namespaces.includes(namespace);
  }

  /** Throws PERMISSION_DENIED unless `identity` may allocate in `namespace` (with forwarding when `multiCluster`). */
  check(identity: string | null, namespace: string, multiCluster: boolean): void {
    const grant = identity !== null && Object.hasOwn(this.#o.clients, identity) ? this.#o.clients[identity] : undefined;
    if (!grant) {
      if (this.#o.mode === 'open') return;
      throw this.#denied(identity, 'is not listed in authorization.clients', namespace);
    }
    if (!this.mayUse(identity, namespace)) throw this.#denied(identity, `may not allocate in namespace ${namespace}`, namespace);
    if (multiCluster && !grant.multiCluster) throw this.#denied(identity, 'may not request multi-cluster allocation', namespace);
  }

  #denied(identity: string | null, why: string, namespace?: string): AllocationError {
    const who = identity ?? '(no identity)';
    return new AllocationError('PERMISSION_DENIED', `client ${who} ${why}`, {
      metadata: { identity: who, ...(namespace !== undefined ? { namespace } : {}) },
    });
  }
}
