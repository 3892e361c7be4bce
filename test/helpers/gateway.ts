// Starts a real gateway on 127.0.0.1 (ephemeral ports, real mTLS) inside the test process,
// with clients for both doors. Stopped after the test.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { GameServer } from '../../src/allocation/types.ts';
import { MemoryStore } from '../../src/cluster/memory/memory-store.ts';
import { parseFleetFile } from '../../src/cluster/memory/fleet-file.ts';
import type { ClusterStore } from '../../src/cluster/store.ts';
import { startGateway as start, type Gateway } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createAllocatorClient, type AllocatorClient } from '../../src/client/index.ts';
import type { Pair, TestCerts } from './certs.ts';

export interface GatewayOptions {
  readonly certs: TestCerts;
  /** Fleet-file data (as parsed YAML) or ready GameServers; default: none. */
  readonly fleet?: unknown;
  readonly gameServers?: readonly GameServer[];
  /** Use this store instead (e.g. a KubernetesStore). */
  readonly store?: ClusterStore;
  /** Extra config keys merged over the defaults. */
  readonly config?: Record<string, unknown>;
}

export interface RestReply {
  readonly status: number;
  readonly body: any;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface TestGateway {
  readonly gateway: Gateway;
  /** The memory store when the gateway runs on one. */
  readonly store: MemoryStore;
  readonly grpcAddress: string;
  readonly restUrl: string;
  readonly opsUrl: string;
  /** Captured log lines (parsed JSON). */
  readonly logs: Record<string, unknown>[];
  client(pair?: Pair): AllocatorClient;
  rest(body: unknown, opts?: { pair?: Pair | null; headers?: Record<string, string>; method?: string; path?: string; raw?: string }): Promise<RestReply>;
  close(): Promise<void>;
}

/** Builds a config tree for a test gateway (all ports ephemeral, loopback only); `extra` is merged by key, one level deep. */
export function testConfig(certs: TestCerts, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, any> = {
    grpc: { host: '127.0.0.1', port: 0 },
    rest: { host: '127.0.0.1', port: 0 },
    ops: { host: '127.0.0.1', port: 0 },
    tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, clientCaDir: certs.clientCaDir },
    cluster: { kind: 'memory', fleetFile: '(in-process)' },
    log: { level: 'info' },
  };
  for (const [k, v] of Object.entries(extra)) {
    // `cluster` is a union by kind: a given one replaces the embedded default instead of merging into it.
    base[k] = k !== 'cluster' && typeof v === 'object' && v !== null && !Array.isArray(v) && typeof base[k] === 'object' ? { ...base[k], ...v } : v;
  }
  return base;
}

export async function startGateway(t: TestContext | { after(fn: () => Promise<void> | void): void }, opts: GatewayOptions): Promise<TestGateway> {
  const { certs } = opts;
  const config = parseConfig(testConfig(certs, opts.config));
  const memory = new MemoryStore(opts.gameServers ?? (opts.fleet ? parseFleetFile(opts.fleet) : []));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const gateway = await start(config, { store: opts.store ?? memory, logger: createLogger(config.log.level, sink) });
  await waitFor(() => gateway.engine.ready, 10_000);
  const clients: AllocatorClient[] = [];
  const ca = readFileSync(certs.caFile);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const c of clients) c.close();
    await gateway.stop();
  };
  t.after(close);
  const restUrl = `https://127.0.0.1:${gateway.restPort}`;
  return {
    gateway,
    store: memory,
    grpcAddress: `127.0.0.1:${gateway.grpcPort}`,
    restUrl,
    opsUrl: `http://127.0.0.1:${gateway.opsPort}`,
    logs,
    client(pair = certs.client) {
      const c = createAllocatorClient({
        address: `127.0.0.1:${gateway.grpcPort}`,
        ca,
        cert: readFileSync(pair.certFile),
        key: readFileSync(pair.keyFile),
        serverName: 'localhost',
      });
      clients.push(c);
      return c;
    },
    rest(body, o = {}) {
      const pair = o.pair === undefined ? certs.client : o.pair;
      return restCall(`${restUrl}${o.path ?? '/gameserverallocation'}`, {
        ca,
        ...(pair ? { cert: readFileSync(pair.certFile), key: readFileSync(pair.keyFile) } : {}),
        method: o.method ?? 'POST',
        headers: o.headers ?? {},
        body: o.raw ?? (body === undefined ? '' : JSON.stringify(body)),
      });
    },
    close,
  };
}

/** One HTTPS request with optional client certificate; resolves with the parsed JSON body. */
export function restCall(
  url: string,
  o: { ca: Buffer; cert?: Buffer; key?: Buffer; method: string; headers: Record<string, string>; body: string },
): Promise<RestReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: o.method, ca: o.ca, cert: o.cert, key: o.key, servername: 'localhost', headers: { 'content-type': 'application/json', ...o.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Polls until fn() is true or the timeout passes. */
export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Resolves with the error a promise rejects with; fails when it resolves. */
export async function caught<E = any>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected a rejection, got a result');
}
