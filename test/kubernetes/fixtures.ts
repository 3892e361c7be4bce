// Shared pieces of the suites that run the gateway on a real kube-apiserver: the deploy/
// manifests, raw API calls as any user (with the API server's warnings), GameServer pools,
// an in-process gateway that is not awaited to be ready, and call outcomes.
import { outcomeOf } from '../reliability/caller.ts';
import https from 'node:https';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { startGateway, type Gateway } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createAllocatorClient, AllocatorError, type AllocatorClient, type AllocationRequest, type CallOptions } from '../../src/client/index.ts';
import { controlPlaneBinaries, type ControlPlane, type GameServerInit, type Json } from '../cluster/control-plane.ts';
import type { TestCerts } from '../helpers/certs.ts';
import { testConfig } from '../helpers/gateway.ts';

const bins = controlPlaneBinaries();
/** false, or why the suites on a real API server are skipped. */
export const skipReason: string | false = 'missing' in bins ? bins.missing : false;

export const DEPLOY_DIR = fileURLToPath(new URL('../../deploy/', import.meta.url));

/** One document of a manifest file. */
export interface Manifest {
  readonly file: string;
  /** The document's YAML text, as shipped (what `kubectl apply` would send). */
  readonly text: string;
  readonly obj: Json;
}

/** Every document of deploy/*.yaml except kustomization.yaml (deploy/crds is a separate install). */
export function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(DEPLOY_DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY_DIR, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJSON() as Json;
      if (obj === null || obj === undefined) continue;
      out.push({ file, text: doc.toString(), obj });
    }
  }
  return out;
}

/** The single manifest of a kind (and name, when several). */
export function manifest(all: readonly Manifest[], kind: string, name?: string): Json {
  const found = all.filter((m) => m.obj.kind === kind && (name === undefined || m.obj.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''} in deploy/, found ${found.length}`);
  return found[0]!.obj;
}

/** An answer of the API server, with its warnings (Warning headers, e.g. Pod Security). */
export interface ApiReply {
  readonly status: number;
  readonly body: Json;
  readonly text: string;
  readonly warnings: string[];
}

/** One request to the API server as the user of `token` (admin or the service account). */
export function apiCall(cp: ControlPlane, token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = contentType;
    const req = https.request(
      { host: '127.0.0.1', port: cp.port, path, method, headers, ca: cp.caPem, agent: false, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Json;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const w = res.headers['warning'];
          const warnings = w === undefined ? [] : Array.isArray(w) ? w : [w];
          resolve({ status: res.statusCode ?? 0, body: parsed, text, warnings });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Where objects of a kind live, from the API server's discovery. */
export interface ResourceInfo {
  readonly plural: string;
  readonly namespaced: boolean;
}

/** Looks up the REST path of an object (collection path when `named` is false). */
export async function resourcePath(cp: ControlPlane, obj: Json, named = true): Promise<string> {
  const apiVersion: string = obj.apiVersion;
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const r = await cp.request('GET', base);
  if (r.status !== 200) throw new Error(`discovery ${base}: HTTP ${r.status}`);
  const res = (r.body.resources as Json[]).find((x) => x.kind === obj.kind && !String(x.name).includes('/'));
  if (!res) throw new Error(`${apiVersion} ${obj.kind} is not served by this API server`);
  const ns = res.namespaced ? `/namespaces/${encodeURIComponent(obj.metadata.namespace ?? 'default')}` : '';
  return `${base}${ns}/${res.name}${named ? `/${encodeURIComponent(obj.metadata.name)}` : ''}`;
}

/** Server-side apply of one manifest (the YAML as shipped); `dryRun` sends ?dryRun=All. */
export async function serverSideApply(cp: ControlPlane, m: Manifest | { text: string; obj: Json }, opts: { dryRun: boolean; strict?: boolean }): Promise<ApiReply> {
  const q = new URLSearchParams({ fieldManager: 'allocator-gateway-deploy-test', force: 'true', fieldValidation: opts.strict === false ? 'Warn' : 'Strict' });
  if (opts.dryRun) q.set('dryRun', 'All');
  return await apiCall(cp, cp.adminToken, 'PATCH', `${await resourcePath(cp, m.obj)}?${q}`, m.text, 'application/apply-patch+yaml');
}

/** POSTs `count` GameServers (init(i)), `concurrency` at a time; returns their names. */
export async function createGameServers(cp: ControlPlane, namespace: string, count: number, init: (i: number) => GameServerInit, concurrency = 16): Promise<string[]> {
  const names: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const gs = init(i);
      await cp.createGameServer(namespace, gs);
      names.push(gs.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return names;
}

/** name → state of every GameServer in a namespace, read from the API server. */
export async function statesIn(cp: ControlPlane, namespace: string): Promise<Map<string, string>> {
  const list = await cp.listGameServers(namespace);
  return new Map((list.items as Json[]).map((g) => [g.metadata.name as string, (g.status?.state ?? '') as string]));
}

/** Names of the Allocated GameServers in a namespace (API server's view). */
export async function allocatedIn(cp: ControlPlane, namespace: string): Promise<string[]> {
  return [...(await statesIn(cp, namespace))].filter(([, s]) => s === 'Allocated').map(([n]) => n).sort();
}

/** How one Allocate call ended. */
/** A failure's `unknown`: the caller cannot know whether it allocated (no answer, or one marked ambiguous). */
export type Outcome = { readonly ok: string } | { readonly code: string; readonly reason: string | null; readonly message: string; readonly unknown: boolean };

export async function outcome(p: Promise<{ gameServerName: string }>): Promise<Outcome> {
  try {
    return { ok: (await p).gameServerName };
  } catch (err) {
    if (err instanceof AllocatorError) return { code: err.codeName, reason: err.reason, message: err.details, unknown: outcomeOf(err) === 'unknown' };
    return { code: 'CLIENT', reason: null, message: String(err), unknown: true };
  }
}

/** Counts outcomes by code (OK for successes). */
export function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of outcomes) {
    const k = 'ok' in o ? 'OK' : o.reason ? `${o.code}/${o.reason}` : o.code;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

/** A gateway in this process that is NOT awaited to be ready (readiness tests). */
export interface LocalGateway {
  readonly gateway: Gateway;
  readonly logs: Record<string, unknown>[];
  readonly opsUrl: string;
  client(): AllocatorClient;
  allocate(req: AllocationRequest, opts?: CallOptions): Promise<Outcome>;
  /** GET /ready on the ops port: its HTTP status. */
  readyStatus(): Promise<number>;
  stop(): Promise<void>;
}

export async function startLocalGateway(t: { after(fn: () => Promise<void> | void): void }, certs: TestCerts, config: Record<string, unknown>): Promise<LocalGateway> {
  const parsed = parseConfig(testConfig(certs, config));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const gateway = await startGateway(parsed, { logger: createLogger(parsed.log.level, sink) });
  const clients: AllocatorClient[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of clients) c.close();
    await gateway.stop();
  };
  t.after(stop);
  const opsUrl = `http://127.0.0.1:${gateway.opsPort}`;
  const client = () => {
    const c = createAllocatorClient({
      address: `127.0.0.1:${gateway.grpcPort}`,
      ca: readFileSync(certs.caFile),
      cert: readFileSync(certs.clientCertFile),
      key: readFileSync(certs.clientKeyFile),
      serverName: 'localhost',
    });
    clients.push(c);
    return c;
  };
  let shared: AllocatorClient | undefined;
  return {
    gateway,
    logs,
    opsUrl,
    client,
    allocate: (req, opts) => outcome((shared ??= client()).allocate(req, { deadline: 10_000, ...opts })),
    readyStatus: async () => (await fetch(`${opsUrl}/ready`)).status,
    stop,
  };
}

/** Polls until probe() is truthy; fails with `what` after timeoutMs. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
