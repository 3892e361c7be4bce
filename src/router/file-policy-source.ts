// Policies from a static YAML file, for deployments without Kubernetes: the same
// GameServerAllocationPolicy documents one would kubectl-apply (several per file, `---`
// separated), or a mapping `{ policies: [ … ] }`. Secrets come from
// `<secretsDir>/<secretName>/{tls.crt,tls.key,ca.crt}`. Both are re-read when they change.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { clientSecretOf } from './client-secret.ts';
import { parsePolicy, type AllocationPolicy, type PolicyProblem } from './policy.ts';
import { SecretProblem, type ClientSecret, type NamespacePolicies, type PolicySource } from './policy-source.ts';

export interface FilePolicySourceOptions {
  readonly policyFile: string;
  readonly secretsDir: string;
  /** How often the file and the secrets are checked for changes; default 1 s. */
  readonly pollMs?: number;
  readonly logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/** The policies a file holds, by namespace, and the problems found in it. */
export function readPolicyFile(path: string): { policies: AllocationPolicy[]; problems: PolicyProblem[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { policies: [], problems: [{ name: '(file)', namespace: '', problems: [`cannot read policy file ${path}: ${(err as Error).message}`] }] };
  }
  const policies: AllocationPolicy[] = [];
  const problems: PolicyProblem[] = [];
  const objects: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      problems.push({ name: '(file)', namespace: '', problems: doc.errors.map((e) => `${path}: ${e.message}`) });
      continue;
    }
    const v: unknown = doc.toJSON();
    if (v === null || v === undefined) continue;
    const list = (v as { policies?: unknown }).policies;
    if (Array.isArray(list)) objects.push(...list);
    else if ((v as { kind?: unknown }).kind === 'List' && Array.isArray((v as { items?: unknown }).items)) objects.push(...(v as { items: unknown[] }).items);
    else objects.push(v);
  }
  const seen = new Set<string>();
  for (const o of objects) {
    const r = parsePolicy(o, 'default');
    if (!r.ok) {
      problems.push(r.problem);
      continue;
    }
    const id = `${r.policy.namespace}/${r.policy.name}`;
    if (seen.has(id)) {
      problems.push({ name: r.policy.name, namespace: r.policy.namespace, problems: [`metadata.name: duplicate policy ${id} in ${path}`] });
      continue;
    }
    seen.add(id);
    policies.push(r.policy);
  }
  return { policies, problems };
}

function mtimeKey(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'absent';
  }
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

export class FilePolicySource implements PolicySource {
  readonly #opts: FilePolicySourceOptions;
  readonly #listeners = new Set<(namespace: string) => void>();
  readonly #timer: NodeJS.Timeout;
  readonly #secrets = new Map<string, { readAt: number; key: string; value: ClientSecret | SecretProblem }>();
  #fileKey = '';
  #byNamespace = new Map<string, NamespacePolicies>();
  #fileProblems: PolicyProblem[] = [];

  constructor(opts: FilePolicySourceOptions) {
    this.#opts = opts;
    this.#load();
    this.#timer = setInterval(() => this.#poll(), opts.pollMs ?? 1_000);
    this.#timer.unref();
  }

  #load(): void {
    this.#fileKey = mtimeKey(this.#opts.policyFile);
    const { policies, problems } = readPolicyFile(this.#opts.policyFile);
    const by = new Map<string, { policies: AllocationPolicy[]; problems: PolicyProblem[] }>();
    const entry = (ns: string) => {
      let e = by.get(ns);
      if (!e) by.set(ns, (e = { policies: [], problems: [] }));
      return e;
    };
    for (const p of policies) entry(p.namespace).policies.push(p);
    this.#fileProblems = problems.filter((p) => p.namespace === '');
    for (const p of problems) if (p.namespace !== '') entry(p.namespace).problems.push(p);
    this.#byNamespace = by;
    for (const p of problems) this.#opts.logger.warn({ policy: p.name, namespace: p.namespace, problems: p.problems }, 'unusable GameServerAllocationPolicy');
    this.#opts.logger.info({ policyFile: this.#opts.policyFile, policies: policies.length, problems: problems.length }, 'allocation policies loaded');
  }

  #poll(): void {
    if (mtimeKey(this.#opts.policyFile) !== this.#fileKey) {
      this.#load();
      for (const ns of this.#byNamespace.keys()) for (const l of this.#listeners) l(ns);
    }
    // Secrets are re-read lazily (on the next use after pollMs); nothing to do here.
  }

  /** Every namespace: the file bounds what is kept. */
  serves(): boolean {
    return true;
  }

  async policies(namespace: string): Promise<NamespacePolicies> {
    const e = this.#byNamespace.get(namespace);
    const problems = [...(e?.problems ?? []), ...this.#fileProblems];
    return { policies: e?.policies ?? [], problems };
  }

  async secret(namespace: string, name: string): Promise<ClientSecret> {
    const cached = this.#secrets.get(name);
    const now = Date.now();
    // Files are looked at no more than once per pollMs; in between the cached secret is served.
    if (cached && now - cached.readAt < (this.#opts.pollMs ?? 1_000)) {
      if (cached.value instanceof SecretProblem) throw cached.value;
      return cached.value;
    }
    const dir = join(this.#opts.secretsDir, name);
    const files = ['tls.crt', 'tls.key', 'ca.crt'].map((f) => join(dir, f));
    const key = files.map(mtimeKey).join('|');
    if (cached && cached.key === key) {
      cached.readAt = now;
      if (cached.value instanceof SecretProblem) throw cached.value;
      return cached.value;
    }
    let value: ClientSecret | SecretProblem;
    if (name === '' || name.includes('/') || name.startsWith('.')) {
      value = new SecretProblem(`policy secretName ${JSON.stringify(name)} is not a valid secret name`);
    } else {
      try {
        value = clientSecretOf(`secret ${name} (${dir}) for namespace ${namespace}`, readOptional(files[0]!), readOptional(files[1]!), readOptional(files[2]!));
      } catch (err) {
        value = err instanceof SecretProblem ? err : new SecretProblem(String(err));
      }
    }
    this.#secrets.set(name, { readAt: now, key, value });
    if (cached && !(cached.value instanceof SecretProblem) && !(value instanceof SecretProblem) && cached.value.version !== value.version) {
      this.#opts.logger.info({ secret: name }, 'client secret changed; remote channels will be rebuilt');
    }
    if (value instanceof SecretProblem) throw value;
    return value;
  }

  onChange(listener: (namespace: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#listeners.clear();
  }
}
