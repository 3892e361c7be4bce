// Where GameServerAllocationPolicies and their client-certificate secrets come from: the API
// server (kubernetes/policy-source.ts) or a static YAML file (file-policy-source.ts).
import type { AllocationPolicy, PolicyProblem } from './policy.ts';

/** The client certificate (and optional CA) a remote target is dialled with. */
export interface ClientSecret {
  /** PEM client certificate chain (tls.crt). */
  readonly cert: Buffer;
  /** PEM private key (tls.key). */
  readonly key: Buffer;
  /** PEM CA bundle (ca.crt); empty when absent. */
  readonly ca: Buffer;
  /** Changes whenever any of the three changes: channels are rebuilt on a new version. */
  readonly version: string;
}

/** Thrown by PolicySource.secret(); the message says which secret and what is wrong. */
export class SecretProblem extends Error {
  override readonly name = 'SecretProblem';
}

/** What a policy source knows about one namespace. */
export interface NamespacePolicies {
  readonly policies: readonly AllocationPolicy[];
  /** Objects that could not be read as policies (reported, never silently dropped). */
  readonly problems: readonly PolicyProblem[];
  /** The source does not serve this namespace at all (not configured). */
  readonly unserved?: boolean;
}

/** Source of policies and secrets, per request namespace. */
export interface PolicySource {
  /**
   * The policies of a namespace; waits until its first list arrives (bounded by the signal).
   * A namespace the source does not serve has none, and no watch is started for it.
   */
  policies(namespace: string, signal: AbortSignal): Promise<NamespacePolicies>;
  /** The client secret `name` of `namespace`; throws SecretProblem when missing or incomplete. */
  secret(namespace: string, name: string, signal: AbortSignal): Promise<ClientSecret>;
  /** Whether the source keeps policies for `namespace` (false: requests there find none). */
  serves(namespace: string): boolean;
  /** Called after any change (policies or secrets), e.g. to log problems again. */
  onChange(listener: (namespace: string) => void): () => void;
  close(): Promise<void>;
}

/** A policy source for deployments without multi-cluster policies: every namespace is empty. */
export class EmptyPolicySource implements PolicySource {
  async policies(): Promise<NamespacePolicies> {
    return { policies: [], problems: [], unserved: true };
  }

  serves(): boolean {
    return false;
  }

  async secret(namespace: string, name: string): Promise<ClientSecret> {
    throw new SecretProblem(`secret ${namespace}/${name}: no policy source is configured`);
  }

  onChange(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}
