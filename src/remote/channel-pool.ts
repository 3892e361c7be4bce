// One warm mTLS channel per remote endpoint and client credentials, shared by every request and
// target that dials it with them (tenants with different Secrets get a channel each, never one
// rebuilt back and forth). When the credentials' material or the server CA changes, the next
// call builds a new channel and the old one is closed after a grace period (calls already on
// it finish).
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { CLIENT_CHANNEL_OPTIONS } from '../client/index.ts';
import { allocateMethod } from '../protocol/proto.ts';
import { explainRouteMethod, getCapacityMethod } from './gateway-proto.ts';

/** Client certificate, key and CA bundle for one target (a policy's secret). */
export interface RemoteTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  readonly version: string;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

/** A client speaking AllocationService and GatewayService over one channel. */
export type RemoteStub = grpc.Client & {
  Allocate: Unary<unknown, unknown>;
  GetCapacity: Unary<unknown, unknown>;
  ExplainRoute: Unary<unknown, unknown>;
};

const RemoteClient = grpc.makeGenericClientConstructor(
  { Allocate: allocateMethod, GetCapacity: getCapacityMethod, ExplainRoute: explainRouteMethod },
  'RemoteAllocator',
);

/** Channel options: the keepalive agones-allocator tolerates (one ping a minute at most) and a bounded reconnect backoff. */
export const REMOTE_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...CLIENT_CHANNEL_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 5_000,
  // Retries are the router's decision, never grpc-js's.
  'grpc.enable_retries': 0,
  // No channelz service is exposed: its per-call bookkeeping would be CPU spent for nothing.
  'grpc.enable_channelz': 0,
};

interface Entry {
  readonly key: string;
  readonly stub: RemoteStub;
  lastUsed: number;
}

export interface ChannelPoolOptions {
  /** Channels unused this long are closed; default 10 min. */
  readonly idleMs?: number;
  /** An old channel lives this long after a replacement, for calls already on it; default 30 s. */
  readonly retireMs?: number;
  readonly onRebuild?: (endpoint: string) => void;
}

function credentials(endpoint: string, material: RemoteTls | null, serverCa: string): { creds: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const host = endpoint.startsWith('[') ? endpoint.slice(1, endpoint.indexOf(']')) : endpoint.slice(0, endpoint.lastIndexOf(':'));
  const roots = [serverCa, material?.ca.toString('utf8') ?? ''].filter((s) => s.trim() !== '').join('\n');
  // As agones-allocator: serverCa + ca.crt when either is set, else the system roots.
  const rootBuf = roots === '' ? null : Buffer.from(roots);
  const options: grpc.ChannelOptions = { ...REMOTE_CHANNEL_OPTIONS };
  const verify: grpc.VerifyOptions = {};
  if (isIP(host) !== 0) {
    // TLS SNI may not carry an IP (DEP0123): send a placeholder name, verify the IP SAN ourselves.
    options['grpc.ssl_target_name_override'] = 'ip-address.invalid';
    options['grpc.default_authority'] = endpoint;
    verify.checkServerIdentity = (_name, cert) => tls.checkServerIdentity(host, cert);
  }
  const creds = material
    ? grpc.credentials.createSsl(rootBuf, material.key, material.cert, verify)
    : grpc.credentials.createSsl(rootBuf, null, null, verify);
  return { creds, options };
}

export class ChannelPool {
  readonly #entries = new Map<string, Entry>();
  readonly #opts: ChannelPoolOptions;
  readonly #sweeper: NodeJS.Timeout;
  readonly #retiring = new Set<NodeJS.Timeout>();

  constructor(opts: ChannelPoolOptions = {}) {
    this.#opts = opts;
    const idleMs = opts.idleMs ?? 600_000;
    this.#sweeper = setInterval(() => {
      const cutoff = Date.now() - idleMs;
      for (const [id, e] of this.#entries) {
        if (e.lastUsed < cutoff) {
          e.stub.close();
          this.#entries.delete(id);
        }
      }
    }, Math.min(idleMs, 60_000));
    this.#sweeper.unref();
  }

  /**
   * The channel for an endpoint with these credentials (named by `credentialsId`, e.g. the
   * Secret; `material` is their current content), built (and connecting) on first use.
   */
  get(endpoint: string, credentialsId: string, material: RemoteTls | null, serverCa: string): RemoteStub {
    const key = `${material?.version ?? 'no-client-cert'}:${serverCa === '' ? '' : createHash('sha256').update(serverCa).digest('hex').slice(0, 16)}`;
    const id = `${endpoint}\u0000${credentialsId}`;
    const e = this.#entries.get(id);
    if (e && e.key === key) {
      e.lastUsed = Date.now();
      return e.stub;
    }
    if (e) {
      this.#opts.onRebuild?.(endpoint);
      const timer = setTimeout(() => {
        this.#retiring.delete(timer);
        e.stub.close();
      }, this.#opts.retireMs ?? 30_000);
      timer.unref();
      this.#retiring.add(timer);
    }
    const { creds, options } = credentials(endpoint, material, serverCa);
    const stub = new RemoteClient(endpoint, creds, options) as unknown as RemoteStub;
    // Warm: start connecting now, not on the first call.
    stub.getChannel().getConnectivityState(true);
    this.#entries.set(id, { key, stub, lastUsed: Date.now() });
    return stub;
  }

  /** Starts connecting ahead of use (e.g. when policies are loaded). */
  warm(endpoint: string, credentialsId: string, material: RemoteTls | null, serverCa: string): void {
    this.get(endpoint, credentialsId, material, serverCa);
  }

  /** Channels open now. */
  get size(): number {
    return this.#entries.size;
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const t of this.#retiring) clearTimeout(t);
    for (const e of this.#entries.values()) e.stub.close();
    this.#entries.clear();
  }
}

/** Waits until the channel is READY or the deadline passes; false on timeout or shutdown. */
export function waitConnected(stub: RemoteStub, deadlineMs: number): Promise<boolean> {
  const channel = stub.getChannel();
  return new Promise((resolve) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve(true);
      if (state === grpc.connectivityState.SHUTDOWN || Date.now() >= deadlineMs) return resolve(false);
      channel.watchConnectivityState(state, deadlineMs, (err) => (err ? resolve(channel.getConnectivityState(false) === grpc.connectivityState.READY) : check()));
    };
    check();
  });
}
