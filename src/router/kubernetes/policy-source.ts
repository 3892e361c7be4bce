// Policies and client secrets from the API server: one list+watch of
// GameServerAllocationPolicies and one of Secrets per configured namespace, started at once.
// Namespaces are never taken from requests: a caller naming namespaces would otherwise start
// watches without end (agones-allocator reads the request's namespace on every call).
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import { AllocationError } from '../../allocation/errors.ts';
import { KubeHttp } from '../../cluster/kubernetes/kube-http.ts';
import { loadKubeConfig } from '../../cluster/kubernetes/kubernetes-store.ts';
import { clientSecretOf } from '../client-secret.ts';
import { parsePolicy, type AllocationPolicy, type PolicyProblem } from '../policy.ts';
import { SecretProblem, type ClientSecret, type NamespacePolicies, type PolicySource } from '../policy-source.ts';

export interface KubernetesPolicySourceOptions {
  /** A loaded KubeConfig, a kubeconfig path, or 'in-cluster'. */
  readonly kubeConfig: KubeConfig | string;
  readonly logger: { info(o: object, m: string): void; warn(o: object, m: string): void; debug(o: object, m: string): void };
  /** The namespaces whose policies are served (each costs two watches); requests in others find none. */
  readonly namespaces: readonly string[];
}

type Cache<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

interface SecretObject extends KubernetesObject {
  data?: Record<string, string>;
}

/** Both watches of one namespace. */
class NamespaceWatch {
  readonly namespace: string;
  readonly policies: Cache<KubernetesObject>;
  readonly secrets: Cache<SecretObject>;
  /** Settles when both first lists are in (or one failed). */
  readonly listed: Promise<void>;
  error: string | null = null;
  #parsed: NamespacePolicies | null = null;
  readonly #secretCache = new Map<string, { rv: string; value: ClientSecret | SecretProblem }>();
  #stopped = false;

  constructor(namespace: string, kc: KubeConfig, http: KubeHttp, onChange: () => void, log: KubernetesPolicySourceOptions['logger']) {
    this.namespace = namespace;
    const ns = encodeURIComponent(namespace);
    const list = (path: string) => async () => {
      const r = await http.request('GET', path, { timeoutMs: 30_000 });
      if (r.status !== 200) {
        const b = r.body as { message?: string } | undefined;
        throw new Error(`GET ${path}: HTTP ${r.status}: ${b?.message ?? ''}`);
      }
      return r.body as { items: never[]; metadata: { resourceVersion?: string } };
    };
    const policyPath = `/apis/multicluster.agones.dev/v1/namespaces/${ns}/gameserverallocationpolicies`;
    const secretPath = `/api/v1/namespaces/${ns}/secrets`;
    this.policies = makeInformer<KubernetesObject>(kc, policyPath, list(policyPath));
    this.secrets = makeInformer<SecretObject>(kc, secretPath, list(secretPath));
    const changed = (what: 'policies' | 'secrets') => () => {
      if (what === 'policies') this.#parsed = null;
      onChange();
    };
    for (const [what, informer] of [['policies', this.policies], ['secrets', this.secrets]] as const) {
      for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, changed(what));
      let delay = 250;
      informer.on('error', (err: unknown) => {
        if (this.#stopped) return;
        this.error = `${what} of namespace ${namespace}: ${(err as Error)?.message ?? String(err)}`;
        log.warn({ namespace, err: this.error, retryInMs: delay }, 'multi-cluster watch failed; retrying');
        setTimeout(() => {
          if (!this.#stopped) void informer.start();
        }, delay).unref();
        delay = Math.min(delay * 2, 10_000);
      });
      // ListWatch signals 'connect' before it lists: only a reconnect after a successful list
      // (a resourceVersion is held) ends the backoff, or a list refused with 403 loops every 250 ms.
      informer.on('connect', () => {
        if ((informer as unknown as { latestResourceVersion(): string }).latestResourceVersion() !== '') delay = 250;
      });
    }
    this.listed = Promise.all([this.policies.start(), this.secrets.start()]).then(() => {
      if (this.synced) log.info({ namespace, policies: this.policies.list(namespace).length }, 'multi-cluster policies watched');
    });
  }

  /** Both caches hold a complete list. */
  get synced(): boolean {
    const rv = (c: unknown) => (c as { latestResourceVersion(): string }).latestResourceVersion();
    return rv(this.policies) !== '' && rv(this.secrets) !== '';
  }

  parsed(): NamespacePolicies {
    if (this.#parsed) return this.#parsed;
    const policies: AllocationPolicy[] = [];
    const problems: PolicyProblem[] = [];
    for (const obj of this.policies.list(this.namespace)) {
      const r = parsePolicy(obj, this.namespace);
      if (r.ok) policies.push(r.policy);
      else problems.push(r.problem);
    }
    this.#parsed = { policies, problems };
    return this.#parsed;
  }

  secret(name: string): ClientSecret {
    const obj = this.secrets.get(name, this.namespace);
    if (!obj) throw new SecretProblem(`secret ${this.namespace}/${name} not found`);
    const rv = obj.metadata?.resourceVersion ?? '';
    const cached = this.#secretCache.get(name);
    let value: ClientSecret | SecretProblem;
    if (cached && cached.rv === rv && rv !== '') {
      value = cached.value;
    } else {
      const d = obj.data ?? {};
      const buf = (k: string) => (d[k] ? Buffer.from(d[k], 'base64') : undefined);
      try {
        value = clientSecretOf(`secret ${this.namespace}/${name}`, buf('tls.crt'), buf('tls.key'), buf('ca.crt'));
      } catch (err) {
        value = err instanceof SecretProblem ? err : new SecretProblem(String(err));
      }
      this.#secretCache.set(name, { rv, value });
    }
    if (value instanceof SecretProblem) throw value;
    return value;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([this.policies.stop(), this.secrets.stop()]);
  }
}

const UNSERVED: NamespacePolicies = Object.freeze({ policies: [], problems: [], unserved: true });

export class KubernetesPolicySource implements PolicySource {
  readonly #kc: KubeConfig;
  readonly #http: KubeHttp;
  readonly #opts: KubernetesPolicySourceOptions;
  readonly #watches = new Map<string, NamespaceWatch>();
  readonly #listeners = new Set<(namespace: string) => void>();

  constructor(opts: KubernetesPolicySourceOptions) {
    this.#opts = opts;
    this.#kc = loadKubeConfig(opts.kubeConfig);
    this.#http = new KubeHttp(this.#kc);
    for (const namespace of new Set(opts.namespaces)) {
      const w = new NamespaceWatch(namespace, this.#kc, this.#http, () => {
        for (const l of this.#listeners) l(namespace);
      }, this.#opts.logger);
      this.#watches.set(namespace, w);
    }
  }

  serves(namespace: string): boolean {
    return this.#watches.has(namespace);
  }

  async #synced(namespace: string, signal: AbortSignal): Promise<NamespaceWatch> {
    const w = this.#watches.get(namespace);
    if (!w) throw new SecretProblem(`namespace ${namespace} is not served for multi-cluster allocation`);
    // A first list that fails (RBAC not applied yet, an API server restarting) is retried by the
    // informer: the request waits for it until its deadline, not just for the first try.
    while (!w.synced) {
      await new Promise<void>((resolve, reject) => {
        // The API server's text (RBAC messages name users and resources) is logged, not told.
        const onAbort = () => {
          clearTimeout(timer);
          reject(new AllocationError('NOT_READY', `multi-cluster policies of namespace ${namespace} are not loaded yet${w.error ? ' (the API server refused or failed the list; see the gateway log)' : ''}`));
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, 25);
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    return w;
  }

  async policies(namespace: string, signal: AbortSignal): Promise<NamespacePolicies> {
    if (!this.#watches.has(namespace)) return UNSERVED;
    return (await this.#synced(namespace, signal)).parsed();
  }

  async secret(namespace: string, name: string, signal: AbortSignal): Promise<ClientSecret> {
    return (await this.#synced(namespace, signal)).secret(name);
  }

  onChange(listener: (namespace: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await Promise.all([...this.#watches.values()].map((w) => w.stop()));
    this.#watches.clear();
    this.#http.close();
  }
}
