// Starts a real gateway as a child process (`node src/main.ts --config FILE`) on 127.0.0.1
// with ephemeral ports, reads its JSON log for the bound ports, and kills it after the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createAllocatorClient, type AllocatorClient } from '../../src/client/index.ts';
import type { Pair, TestCerts } from './certs.ts';
import { testConfig } from './gateway.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const PROBE = fileURLToPath(new URL('./store-probe.ts', import.meta.url));

/** A GameServer of the embedded cluster as the store probe reads it. */
export interface ProbedGameServer {
  readonly name: string;
  readonly state: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface GatewayProcessOptions {
  readonly certs: TestCerts;
  /** Fleet-file data for an embedded (memory) cluster. Ignored when config sets `cluster`. */
  readonly fleet?: unknown;
  /** Config keys merged over the defaults (e.g. cluster, multiCluster). */
  readonly config?: Record<string, unknown>;
  /** Name in error messages. */
  readonly name?: string;
  /** Extra environment for the child (e.g. NODE_OPTIONS). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Reads the embedded cluster's GameServers by name, past the gateway (test/helpers/store-probe.ts). */
export interface StoreProbe {
  /** While the gateway runs. */
  snapshot(): Promise<ProbedGameServer[]>;
  /** As the gateway left them when it exited. */
  atExit(): ProbedGameServer[];
}

export interface GatewayProcess {
  readonly name: string;
  readonly pid: number;
  readonly grpcPort: number;
  readonly restPort: number;
  readonly opsPort: number;
  /** 127.0.0.1:grpcPort */
  readonly address: string;
  readonly logs: Record<string, unknown>[];
  client(pair?: Pair): AllocatorClient;
  /** SIGKILL (a crash) or SIGTERM (a drain). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** The embedded cluster's objects, read past the gateway (memory clusters only). */
  readonly store: StoreProbe;
}

/** The default memory-cluster fleet: `ready` Ready GameServers of fleet `name` in `namespace`. */
export function simpleFleet(name: string, ready: number, namespace = 'default', labels: Record<string, string> = {}): unknown {
  return {
    nodes: [{ name: `${name}-node`, addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] }],
    fleets: [{ name, namespace, replicas: ready, labels, ports: [{ name: 'default', basePort: 7000 }] }],
  };
}

function merge(base: Record<string, any>, extra: Record<string, unknown>): Record<string, any> {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    out[k] = typeof v === 'object' && v !== null && !Array.isArray(v) && typeof out[k] === 'object' ? merge(out[k], v as Record<string, unknown>) : v;
  }
  return out;
}

export async function startGatewayProcess(
  t: { after(fn: () => Promise<void> | void): void },
  opts: GatewayProcessOptions,
): Promise<GatewayProcess> {
  const name = opts.name ?? 'gateway';
  const dir = mkdtempSync(join(tmpdir(), `gw-proc-${name}-`));
  const { certs } = opts;
  let cluster = opts.config?.cluster;
  if (!cluster) {
    writeFileSync(join(dir, 'fleet.json'), JSON.stringify(opts.fleet ?? { nodes: [{ name: 'n', addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] }] }));
    cluster = { kind: 'memory', fleetFile: join(dir, 'fleet.json') };
  }
  const config = merge(testConfig(certs, { log: { level: 'debug' }, cluster }), opts.config ?? {});
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const probeFile = join(dir, 'store-at-exit.json');
  const child: ChildProcess = spawn(process.execPath, ['--import', PROBE, MAIN, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...opts.env, STORE_PROBE_FILE: probeFile },
  });
  let probeId = 0;
  const store: StoreProbe = {
    snapshot: () =>
      new Promise((resolve, reject) => {
        const id = ++probeId;
        const onMessage = (m: { type?: string; id?: number; gameServers?: ProbedGameServer[] }) => {
          if (m?.type !== 'snapshot' || m.id !== id) return;
          child.off('message', onMessage);
          resolve(m.gameServers ?? []);
        };
        child.on('message', onMessage);
        child.send({ type: 'snapshot', id }, (err) => err && reject(err));
      }),
    atExit: () => JSON.parse(readFileSync(probeFile, 'utf8')) as ProbedGameServer[],
  };
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const ports = await new Promise<{ grpcPort: number; restPort: number; opsPort: number }>((resolve, reject) => {
    let listening: { grpcPort: number; restPort: number; opsPort: number } | null = null;
    const timer = setTimeout(() => reject(new Error(`${name}: not serving within 30 s\n${stderr}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(o);
      if (o.msg === 'gateway listening') listening = o as never;
      if (o.msg === 'cluster cache synced; serving' && listening) {
        clearTimeout(timer);
        resolve(listening);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before serving\n${stderr}`));
    });
  });
  const clients: AllocatorClient[] = [];
  const ca = readFileSync(certs.caFile);
  let exited = false;
  child.once('exit', () => (exited = true));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    for (const c of clients.splice(0)) c.close();
    if (exited) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(timer);
  };
  t.after(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    name,
    pid: child.pid!,
    ...ports,
    address: `127.0.0.1:${ports.grpcPort}`,
    logs,
    client(pair = certs.client) {
      const c = createAllocatorClient({ address: `127.0.0.1:${ports.grpcPort}`, ca, cert: readFileSync(pair.certFile), key: readFileSync(pair.keyFile), serverName: 'localhost' });
      clients.push(c);
      return c;
    },
    kill,
    store,
  };
}
