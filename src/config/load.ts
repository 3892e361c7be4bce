// Configuration sources, lowest precedence first: YAML file ← GATEWAY_* env ← --key=value flags.
// Keys are dotted paths into the schema: `--grpc.port=9443`, `GATEWAY_GRPC__PORT=9443`.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigSchema, type Config } from './schema.ts';

/** A configuration that cannot be used; the message lists every problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path.at(-1)!] = value;
}

/** Values from flags and env are strings; a JSON-looking value (list, object) is parsed. */
function scalar(raw: string): unknown {
  return /^[[{]/.test(raw.trim()) ? JSON.parse(raw) : raw;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validates a raw tree; throws ConfigError listing every bad key. */
export function parseConfig(raw: unknown): Readonly<Config> {
  const r = ConfigSchema.safeParse(raw);
  if (r.success) return deepFreeze(r.data);
  throw new ConfigError(
    'invalid configuration:\n' + r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n'),
  );
}

/** Paths in the file are relative to the file's folder. */
const FILE_PATHS = [
  ['tls', 'certFile'],
  ['tls', 'keyFile'],
  ['tls', 'clientCaDir'],
  ['cluster', 'fleetFile'],
  ['cluster', 'kubeconfig'],
  ['multiCluster', 'policyFile'],
];

function resolvePaths(tree: Tree, base: string): void {
  for (const path of FILE_PATHS) {
    let node: unknown = tree;
    for (const k of path.slice(0, -1)) node = (node as Tree | undefined)?.[k];
    const leaf = path.at(-1)!;
    const v = (node as Tree | undefined)?.[leaf];
    if (typeof v === 'string') (node as Tree)[leaf] = resolve(base, v);
  }
}

/** Builds the configuration from argv (after the script name) and env. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const tree: Tree = {};
  const flags: [string[], unknown][] = [];
  let file = env.GATEWAY_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags look like --grpc.port=9443)`);
    const eq = arg.indexOf('=');
    const key = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`flag --${key} needs a value`);
    if (key === 'config') file = value;
    else flags.push([key.split('.'), scalar(value)]);
  }
  if (file) {
    let loaded: unknown;
    try {
      loaded = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    if (typeof loaded !== 'object' || loaded === null) throw new ConfigError(`config file ${file} must hold a YAML mapping`);
    Object.assign(tree, loaded);
    resolvePaths(tree, dirname(resolve(file)));
  }
  // agones-allocator's own variable, so operators keep the setting they have; GATEWAY_* overrides it.
  if (env.HTTP_UNALLOCATED_STATUS_CODE !== undefined) setPath(tree, ['allocation', 'unallocatedStatusCode'], scalar(env.HTTP_UNALLOCATED_STATUS_CODE));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('GATEWAY_') || name === 'GATEWAY_CONFIG' || value === undefined) continue;
    // GATEWAY_GRPC__PORT → grpc.port; GATEWAY_TLS__CERT_FILE → tls.certFile
    const path = name
      .slice('GATEWAY_'.length)
      .split('__')
      .map((part) => part.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
    setPath(tree, path, scalar(value));
  }
  for (const [path, value] of flags) setPath(tree, path, value);
  return parseConfig(tree);
}
