// A throwaway Kubernetes control plane for tests: etcd + kube-apiserver on free loopback ports,
// PKI and static tokens made with openssl, the project's CRDs installed. Binaries come from
// test/cluster/build.sh; suites call controlPlaneBinaries() first and skip with its reason.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { parseAllDocuments } from 'yaml';

const execFileAsync = promisify(execFile);

export const ETCD_VERSION = 'v3.6.16';
export const KUBE_VERSION = 'v1.34.4';

const CRD_DIR = fileURLToPath(new URL('../../deploy/crds/', import.meta.url));

/** Parsed JSON from the API server; tests read it loosely. */
export type Json = any;

/** A response from ControlPlane.request(); never thrown for HTTP errors. */
export interface KubeResponse {
  readonly status: number;
  readonly body: Json;
  readonly text: string;
}

/** A running etcd, possibly shared by several API servers (different etcdPrefix). */
export interface EtcdHandle {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly pid: number;
  readonly dir: string;
  pause(): void;
  resume(): void;
  /** Current etcd revision (the API server's resourceVersion space). */
  revision(): Promise<number>;
  /** Compacts history up to `revision` (default: current), making older resourceVersions expire. */
  compact(revision?: number): Promise<number>;
  stop(): Promise<void>;
}

/** Shape accepted by createGameServer(): status fields plus optional raw spec. */
export interface GameServerInit {
  readonly name: string;
  /** status.state; default Ready. */
  readonly state?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly address?: string;
  readonly addresses?: readonly { type: string; address: string }[];
  readonly ports?: readonly { name: string; port: number }[];
  readonly nodeName?: string;
  readonly counters?: Record<string, { count: number; capacity: number }>;
  readonly lists?: Record<string, { capacity: number; values: readonly string[] }>;
  readonly players?: { count: number; capacity: number };
  /** Raw spec; default a minimal pod template with one UDP port. */
  readonly spec?: Json;
}

export interface ControlPlaneTimings {
  readonly pkiMs: number;
  readonly etcdMs: number;
  readonly apiServerMs: number;
  readonly crdsMs: number;
  readonly totalMs: number;
}

export interface ControlPlane {
  readonly dir: string;
  /** https://127.0.0.1:PORT */
  readonly server: string;
  readonly port: number;
  readonly caPem: string;
  readonly adminToken: string;
  /** Token of the non-admin service-account user (no RBAC rights until grant()). */
  readonly saToken: string;
  readonly saUser: string;
  /** Admin kubeconfig (system:masters). */
  readonly kubeconfigPath: string;
  /** kubeconfig of the service-account user. */
  readonly saKubeconfigPath: string;
  readonly etcd: EtcdHandle;
  readonly etcdPrefix: string;
  readonly timings: ControlPlaneTimings;
  /** PID of the running kube-apiserver (changes on restart). */
  readonly apiServerPid: number;
  /** Admin REST call; body is JSON-encoded unless it is a string. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<KubeResponse>;
  createNamespace(name: string): Promise<Json>;
  /** POSTs a GameServer with the given status (state Ready unless set); returns the stored object. */
  createGameServer(namespace: string, init: GameServerInit): Promise<Json>;
  /** Merge-patches a GameServer (status included: there is no status subresource). */
  patchGameServer(namespace: string, name: string, patch: Json): Promise<Json>;
  /** The stored object, or undefined on 404. */
  getGameServer(namespace: string, name: string): Promise<Json | undefined>;
  /** The list object ({items, metadata.resourceVersion}). */
  listGameServers(namespace: string): Promise<Json>;
  deleteGameServer(namespace: string, name: string): Promise<void>;
  /** Gives the service-account user these cluster-wide rights (ClusterRole + binding). */
  grant(name: string, rules: readonly Json[]): Promise<void>;
  /** SIGTERM, wait for exit. The port stays reserved for startApiServer(). */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port and etcd; resolves when /readyz is ok. */
  startApiServer(): Promise<void>;
  /** stopApiServer() then startApiServer(). */
  restartApiServer(): Promise<void>;
  /** SIGSTOP / SIGCONT to etcd. */
  pauseEtcd(): void;
  resumeEtcd(): void;
  /** Kills everything this control plane started (by PID) and removes its directory. */
  stop(): Promise<void>;
}

/** Paths of the binaries, or why they are unusable (a reason fit for t.skip()). */
export function controlPlaneBinaries(): { etcd: string; apiserver: string } | { missing: string } {
  const cache = process.env['TESTENV_CACHE'] ?? join(homedir(), '.cache', 'gw-testenv');
  const etcd = process.env['ETCD_BIN'] ?? join(cache, 'bin', `etcd-${ETCD_VERSION}`);
  const apiserver = process.env['KUBE_APISERVER_BIN'] ?? join(cache, 'bin', `kube-apiserver-${KUBE_VERSION}`);
  const absent = [etcd, apiserver].filter((p) => !isExecutable(p));
  if (absent.length > 0) {
    return {
      missing:
        `Kubernetes test control plane not built (${absent.join(', ')} missing): ` +
        'run `bash test/cluster/build.sh` (needs Go; 16.5 minutes on a fresh 2-core machine)',
    };
  }
  if (!onPath('openssl')) return { missing: 'openssl is not on PATH (needed for the test PKI)' };
  return { etcd, apiserver };
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && isExecutable(join(d, cmd)));
}

function binaries(): { etcd: string; apiserver: string } {
  const b = controlPlaneBinaries();
  if ('missing' in b) throw new Error(b.missing);
  return b;
}

// ---------------------------------------------------------------------------------------------
// process bookkeeping: every child dies with the test process

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let cleanupRegistered = false;

function registerCleanup(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  const killAll = (): void => {
    for (const child of live) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGCONT');
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    live.clear();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig); // the default action, now that our listener is gone
    });
  }
}

/** Spawns a server with output to logFile; a watchdog SIGKILLs it should this process be SIGKILLed. */
function spawnServer(bin: string, args: readonly string[], logFile: string): ChildProcess {
  registerCleanup();
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  if (child.pid !== undefined) {
    const watchdog = spawn(
      'sh',
      ['-c', 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null', 'watchdog', String(process.pid), String(child.pid)],
      { stdio: 'ignore' },
    );
    watchdog.unref();
  }
  child.unref();
  return child;
}

async function killAndWait(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid !== undefined) {
    try {
      process.kill(child.pid, 'SIGCONT'); // a stopped process would never handle SIGTERM
    } catch {
      // gone
    }
  }
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// small utilities

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Polls `probe` every 100 ms until it returns true; fails early if `child` exits. */
async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<boolean>, child?: ChildProcess, logFile?: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what}: process exited (${child.exitCode ?? child.signalCode})\n${logFile ? tail(logFile) : ''}`);
    }
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`${what}: not ready after ${timeoutMs} ms\n${logFile ? tail(logFile) : ''}`);
    await sleep(100);
  }
}

/** Reads a whole response into a KubeResponse. */
function collect(res: http.IncomingMessage, resolve: (r: KubeResponse) => void, reject: (e: Error) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    resolve({ status: res.statusCode ?? 0, text, body: parseJson(text) });
  });
  res.on('error', reject);
}

function httpJson(url: string, method = 'GET', body?: unknown): Promise<KubeResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(url, { method, headers: payload ? { 'content-type': 'application/json' } : {}, timeout: 5_000 }, (res) => collect(res, resolve, reject));
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function parseJson(text: string): Json {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function tempRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await execFileAsync('openssl', args, { cwd });
}

// ---------------------------------------------------------------------------------------------
// etcd

/** Starts a single-member etcd on free loopback ports with its data under `dir` (default: a temp dir). */
export async function startEtcd(parentDir?: string): Promise<EtcdHandle> {
  const { etcd: bin } = binaries();
  const owned = parentDir === undefined;
  const dir = parentDir ?? mkdtempSync(join(tempRoot(), 'gw-etcd-'));
  if (owned) dirs.add(dir);
  const log = join(dir, 'etcd.log');
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const child = spawnServer(
      bin,
      [
        '--name', 't0', '--data-dir', join(dir, `etcd-data-${attempt}`),
        '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `t0=${peer}`, '--unsafe-no-fsync', '--log-level', 'warn',
      ],
      log,
    );
    try {
      await waitUntil('etcd', 30_000, async () => (await httpJson(`${endpoint}/health`)).body?.health === 'true', child, log);
    } catch (err) {
      lastErr = err;
      await killAndWait(child, 'SIGKILL', 1_000);
      if (/address already in use/.test(tail(log))) continue; // lost a port race; try new ports
      throw err;
    }
    const pid = child.pid as number;
    const revision = async (): Promise<number> => {
      const r = await httpJson(`${endpoint}/v3/kv/range`, 'POST', { key: Buffer.from('\0').toString('base64') });
      return Number(r.body?.header?.revision);
    };
    return {
      endpoint,
      pid,
      dir,
      pause: () => process.kill(pid, 'SIGSTOP'),
      resume: () => process.kill(pid, 'SIGCONT'),
      revision,
      async compact(at?: number) {
        const rev = at ?? (await revision());
        const r = await httpJson(`${endpoint}/v3/kv/compaction`, 'POST', { revision: String(rev), physical: true });
        if (r.status !== 200) throw new Error(`etcd compaction to ${rev}: ${r.status} ${r.text}`);
        return rev;
      },
      async stop() {
        await killAndWait(child, 'SIGKILL', 1_000);
        if (owned) {
          rmSync(dir, { recursive: true, force: true });
          dirs.delete(dir);
        }
      },
    };
  }
  throw lastErr;
}

// ---------------------------------------------------------------------------------------------
// the control plane

const SA_NAMESPACE = 'gw-system';
const SA_NAME = 'allocator-gateway';

/** Starts etcd (unless given) and kube-apiserver, installs deploy/crds, writes two kubeconfigs. */
export async function startControlPlane(opts: { etcdPrefix?: string; etcd?: EtcdHandle } = {}): Promise<ControlPlane> {
  const { apiserver: apiBin } = binaries();
  const t0 = Date.now();
  const dir = mkdtempSync(join(tempRoot(), 'gw-cp-'));
  dirs.add(dir);
  let etcd: EtcdHandle | undefined;
  let api: ChildProcess | undefined;
  let agent: https.Agent | undefined;
  try {
    // PKI: a CA, the serving certificate, the service-account signing key pair (EC P-256: fast to make)
    const pki = join(dir, 'pki');
    mkdirSync(pki);
    await openssl(pki, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
      '-subj', '/CN=gw-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    await openssl(pki, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=kube-apiserver', '-keyout', 'apiserver.key', '-out', 'apiserver.csr');
    writeFileSync(join(pki, 'apiserver.ext'),
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n');
    await openssl(pki, 'x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '30', '-extfile', 'apiserver.ext', '-out', 'apiserver.crt');
    await openssl(pki, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key');
    await openssl(pki, 'ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
    const adminToken = randomBytes(24).toString('hex');
    const saToken = randomBytes(24).toString('hex');
    const saUser = `system:serviceaccount:${SA_NAMESPACE}:${SA_NAME}`;
    writeFileSync(join(pki, 'tokens.csv'),
      `${adminToken},admin,uid-admin,"system:masters"\n` +
      `${saToken},${saUser},uid-${SA_NAME},"system:serviceaccounts,system:serviceaccounts:${SA_NAMESPACE},system:authenticated"\n`);
    const caPem = readFileSync(join(pki, 'ca.crt'), 'utf8');
    const pkiMs = Date.now() - t0;

    const t1 = Date.now();
    etcd = opts.etcd ?? (await startEtcd(dir));
    const etcdMs = Date.now() - t1;
    const etcdPrefix = opts.etcdPrefix ?? '/registry';

    const t2 = Date.now();
    const apiLog = join(dir, 'apiserver.log');
    let port = 0;
    const argsFor = (p: number): string[] => [
      `--etcd-servers=${etcd!.endpoint}`, `--etcd-prefix=${etcdPrefix}`,
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${p}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`, `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`, `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pki, 'sa.pub')}`, `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/24', '--disable-admission-plugins=ServiceAccount',
      '--endpoint-reconciler-type=none', '--profiling=false', '--v=0',
      // without it, open watches hold a SIGTERMed kube-apiserver for up to a minute
      '--shutdown-watch-termination-grace-period=2s',
    ];
    const readyz = (): Promise<boolean> =>
      new Promise((resolve) => {
        const req = https.request(
          { host: '127.0.0.1', port, path: '/readyz', method: 'GET', ca: caPem, timeout: 2_000, agent: false },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(res.statusCode === 200 && text.trim() === 'ok'));
            res.on('error', () => resolve(false));
          },
        );
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
        req.end();
      });
    const launch = async (): Promise<ChildProcess> => {
      const child = spawnServer(apiBin, argsFor(port), apiLog);
      await waitUntil('kube-apiserver', 120_000, readyz, child, apiLog);
      return child;
    };
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        api = await launch();
        break;
      } catch (err) {
        if (attempt < 2 && /address already in use/.test(tail(apiLog))) continue;
        throw err;
      }
    }
    const apiServerMs = Date.now() - t2;
    const server = `https://127.0.0.1:${port}`;

    agent = new https.Agent({ keepAlive: true, ca: caPem, maxSockets: 16 });
    const request = (method: string, path: string, body?: unknown, contentType?: string): Promise<KubeResponse> =>
      new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
        const headers: Record<string, string> = { authorization: `Bearer ${adminToken}`, accept: 'application/json' };
        if (payload !== undefined) headers['content-type'] = contentType ?? 'application/json';
        const req = https.request(
          { host: '127.0.0.1', port, path, method, headers, agent, timeout: 30_000 },
          (res) => collect(res, resolve, reject),
        );
        req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
        req.on('error', reject);
        req.end(payload);
      });
    const ok = async (method: string, path: string, body?: unknown, contentType?: string): Promise<Json> => {
      const r = await request(method, path, body, contentType);
      if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status}: ${r.text}`);
      return r.body;
    };

    const t3 = Date.now();
    await installCrds(request);
    const crdsMs = Date.now() - t3;

    const kubeconfig = (user: string, token: string): string =>
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: test',
        '  cluster:',
        `    server: ${server}`,
        `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
        'users:',
        `- name: ${user}`,
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: test',
        `  context: {cluster: test, user: ${user}, namespace: default}`,
        'current-context: test',
        '',
      ].join('\n');
    const kubeconfigPath = join(dir, 'kubeconfig');
    const saKubeconfigPath = join(dir, 'kubeconfig-sa');
    writeFileSync(kubeconfigPath, kubeconfig('admin', adminToken), { mode: 0o600 });
    writeFileSync(saKubeconfigPath, kubeconfig(SA_NAME, saToken), { mode: 0o600 });

    const gsPath = (ns: string, name?: string): string =>
      `/apis/agones.dev/v1/namespaces/${encodeURIComponent(ns)}/gameservers${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
    const ownedEtcd = opts.etcd === undefined;
    let stopped = false;

    const cp: ControlPlane = {
      dir,
      server,
      port,
      caPem,
      adminToken,
      saToken,
      saUser,
      kubeconfigPath,
      saKubeconfigPath,
      etcd,
      etcdPrefix,
      timings: { pkiMs, etcdMs, apiServerMs, crdsMs, totalMs: Date.now() - t0 },
      get apiServerPid() {
        return api?.pid ?? 0;
      },
      request,
      async createNamespace(name) {
        return await ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      },
      async createGameServer(ns, init) {
        return await ok('POST', gsPath(ns), gameServerObject(init));
      },
      async patchGameServer(ns, name, patch) {
        return await ok('PATCH', gsPath(ns, name), patch, 'application/merge-patch+json');
      },
      async getGameServer(ns, name) {
        const r = await request('GET', gsPath(ns, name));
        if (r.status === 404) return undefined;
        if (r.status !== 200) throw new Error(`GET ${gsPath(ns, name)}: HTTP ${r.status}: ${r.text}`);
        return r.body;
      },
      async listGameServers(ns) {
        return await ok('GET', gsPath(ns));
      },
      async deleteGameServer(ns, name) {
        await ok('DELETE', gsPath(ns, name));
      },
      async grant(name, rules) {
        await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
          apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules,
        });
        await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
          apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
          subjects: [{ kind: 'ServiceAccount', name: SA_NAME, namespace: SA_NAMESPACE }],
        });
      },
      async stopApiServer() {
        if (api !== undefined) await killAndWait(api, 'SIGTERM', 15_000);
        api = undefined;
        agent?.destroy();
        agent = new https.Agent({ keepAlive: true, ca: caPem, maxSockets: 16 });
      },
      async startApiServer() {
        if (api !== undefined) throw new Error('kube-apiserver is already running');
        api = await launch();
        // /readyz turns ok before the custom resources' storage is back: until then lists answer
        // 429 "storage is (re)initializing".
        for (const resource of ['/apis/agones.dev/v1/gameservers?limit=1', '/apis/multicluster.agones.dev/v1/gameserverallocationpolicies?limit=1']) {
          await waitUntil('kube-apiserver custom resource storage', 30_000, async () => (await request('GET', resource)).status === 200, api, apiLog);
        }
      },
      async restartApiServer() {
        await cp.stopApiServer();
        await cp.startApiServer();
      },
      pauseEtcd: () => etcd!.pause(),
      resumeEtcd: () => etcd!.resume(),
      async stop() {
        if (stopped) return;
        stopped = true;
        if (api !== undefined) await killAndWait(api, 'SIGKILL', 1_000);
        api = undefined;
        agent?.destroy();
        if (ownedEtcd) await etcd!.stop();
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      },
    };
    return cp;
  } catch (err) {
    if (api !== undefined) await killAndWait(api, 'SIGKILL', 1_000);
    agent?.destroy();
    if (etcd !== undefined && opts.etcd === undefined) await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw err;
  }
}

/** The GameServer object createGameServer() POSTs. */
export function gameServerObject(init: GameServerInit): Json {
  const status: Json = {
    state: init.state ?? 'Ready',
    address: init.address ?? '127.0.0.1',
    addresses: init.addresses ?? [{ type: 'InternalIP', address: init.address ?? '127.0.0.1' }],
    ports: init.ports ?? [{ name: 'default', port: 7654 }],
    nodeName: init.nodeName ?? 'node-1',
  };
  if (init.counters !== undefined) status.counters = init.counters;
  if (init.lists !== undefined) status.lists = init.lists;
  if (init.players !== undefined) status.players = init.players;
  const metadata: Json = { name: init.name };
  if (init.labels !== undefined) metadata.labels = init.labels;
  if (init.annotations !== undefined) metadata.annotations = init.annotations;
  return {
    apiVersion: 'agones.dev/v1',
    kind: 'GameServer',
    metadata,
    spec: init.spec ?? {
      ports: [{ name: 'default', portPolicy: 'Dynamic', containerPort: 7654, protocol: 'UDP' }],
      template: { spec: { containers: [{ name: 'game', image: 'example.invalid/game:0' }] } },
    },
    status,
  };
}

/** The project's CRD manifests (deploy/crds/*.yaml), parsed. */
export async function loadCrds(): Promise<Json[]> {
  const out: Json[] = [];
  for (const file of readdirSync(CRD_DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(CRD_DIR, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJSON();
      if (obj?.kind === 'CustomResourceDefinition') out.push(obj);
    }
  }
  return out;
}

/** POSTs each CRD (409 = already there), waits for Established, then until its resource lists. */
async function installCrds(request: (m: string, p: string, b?: unknown) => Promise<KubeResponse>): Promise<void> {
  const crds = await loadCrds();
  if (crds.length === 0 || !existsSync(CRD_DIR)) throw new Error(`no CRDs under ${CRD_DIR}`);
  const base = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  for (const crd of crds) {
    const r = await request('POST', base, crd);
    if (r.status !== 201 && r.status !== 409) throw new Error(`create CRD ${crd.metadata.name}: HTTP ${r.status}: ${r.text}`);
  }
  for (const crd of crds) {
    const name: string = crd.metadata.name;
    await waitUntil(`CRD ${name} Established`, 30_000, async () => {
      const r = await request('GET', `${base}/${name}`);
      return (r.body?.status?.conditions ?? []).some((c: Json) => c.type === 'Established' && c.status === 'True');
    });
    const version: string = crd.spec.versions.find((v: Json) => v.storage)?.name ?? crd.spec.versions[0].name;
    // discovery lags Established by a moment: wait until the resource actually lists
    const resource = `/apis/${crd.spec.group}/${version}/${crd.spec.names.plural}`;
    await waitUntil(`list ${name}`, 30_000, async () => (await request('GET', `${resource}?limit=1`)).status === 200);
    // the first write of a fresh API server to a new custom resource stalls ~2 s: take it here, not in a test
    const probe = { apiVersion: `${crd.spec.group}/${version}`, kind: crd.spec.names.kind, metadata: { name: 'warm-up' } };
    const nsPath = resource.replace(`/${crd.spec.names.plural}`, `/namespaces/default/${crd.spec.names.plural}`);
    await request('POST', `${nsPath}?dryRun=All`, probe);
  }
}
