// The gRPC door: AllocationService over mTLS, plus grpc.health.v1 and server reflection.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { WireAllocationRequest, WireAllocationResponse } from '../allocation/wire.ts';
import type { AllocateHandler } from './allocate-handler.ts';
import { createCallContext, MAX_TIMER_MS } from './call-context.ts';
import { packageDefinition } from '../protocol/proto.ts';
import { decodeRequest } from '../protocol/request-decoder.ts';
import { reflectionDefinition } from '../protocol/reflection.ts';
import type { PackageDefinition } from '@grpc/proto-loader';
import { toServiceError, toWireError } from './status.ts';
import { AllocationError } from '../allocation/errors.ts';
import { clientIdentity, grpcServerCredentials, hasClientAuthUsage, type TlsWatcher } from './tls.ts';
import type { Admission } from './admission.ts';
import type { Authorizer } from './authorization.ts';
import { applySocketLimits, grpcJsServers, type SocketLimits } from './socket-limits.ts';

/** Matches agones-allocator's listener: clients may ping at most once a minute. */
export const KEEPALIVE = {
  /** Server pings idle connections this often. */
  timeMs: 5 * 60_000,
  timeoutMs: 20_000,
  /** Minimum client ping interval the gateway tolerates (agones-allocator enforces 60 s). */
  minClientPingIntervalMs: 60_000,
  idleMs: 5 * 60_000,
} as const;

/** grpc-js options of the gateway's listener (the benchmark's no-op baseline uses the same). */
export function listenerOptions(o: Pick<GrpcServerOptions, 'maxReceiveMessageBytes' | 'maxConcurrentStreams' | 'maxSessionMemoryMiB'>): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': o.maxReceiveMessageBytes,
    'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
    'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
    'grpc.max_connection_idle_ms': KEEPALIVE.idleMs,
    // A caller cannot open unbounded streams or buffer unbounded frames on one connection.
    'grpc.max_concurrent_streams': o.maxConcurrentStreams ?? 128,
    'grpc-node.max_session_memory': o.maxSessionMemoryMiB ?? 16,
  };
}

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsWatcher;
  readonly handler: AllocateHandler;
  readonly defaultDeadlineMs: number;
  readonly maxReceiveMessageBytes: number;
  /** HTTP/2 streams one connection may have open; more wait at the client (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams?: number;
  /** HTTP/2 session memory (MiB) per connection before new streams are refused. */
  readonly maxSessionMemoryMiB?: number;
  /** Applied to the extra services too (Allocate gets it through the handler). */
  readonly admission?: Admission;
  readonly authorizer?: Authorizer;
  /** Connection count and TLS handshake time limits. */
  readonly socketLimits?: SocketLimits;
  /** Extra unary services on the same port and TLS (e.g. gateway.v1.GatewayService). */
  readonly extraServices?: readonly ExtraService[];
}

/** A unary handler without transport details: resolves with the response, rejects with an AllocationError. */
export type UnaryHandler = (request: unknown, call: { readonly identity: string | null; readonly signal: AbortSignal }) => Promise<unknown>;

export interface ExtraService {
  readonly name: string;
  /** A service definition as @grpc/proto-loader produces it. */
  readonly definition: object;
  readonly handlers: Readonly<Record<string, UnaryHandler>>;
}

/** Response trailer naming the policy's clusterName that served an allocation. */
export const CLUSTER_TRAILER = 'x-allocator-cluster';
const CLUSTER_ANNOTATION = 'allocator-gateway.dev/cluster';

const SERVICE = 'allocation.AllocationService';
/** Marks a request whose bytes could not be decoded (the error rides along). */
const DECODE_ERROR = Symbol('decodeError');

/** What the verified client certificate says about the caller. */
interface Peer {
  readonly identity: string | null;
  readonly clientAuth: boolean;
}

const peers = new WeakMap<object, Peer>();

/**
 * The caller's identity, parsed once per connection: getPeerCertificate() decodes the certificate
 * on every call and cost 12 % of an Allocate's CPU. The TLS socket is reached through grpc-js
 * internals; when that path changes we fall back to the public getAuthContext() per call.
 */
function peerOf(call: grpc.ServerUnaryCall<unknown, unknown>): Peer {
  type Layer = { nextCall?: Layer; stream?: { session?: { socket?: object } } };
  let layer = (call as unknown as { call?: Layer }).call;
  while (layer && !layer.stream && layer.nextCall) layer = layer.nextCall;
  const socket = layer?.stream?.session?.socket;
  const cached = socket ? peers.get(socket) : undefined;
  if (cached) return cached;
  const cert = call.getAuthContext()?.sslPeerCertificate;
  const peer = { identity: clientIdentity(cert), clientAuth: hasClientAuthUsage(cert) };
  if (socket) peers.set(socket, peer);
  return peer;
}

export class GrpcServer {
  readonly #server: grpc.Server;
  readonly #opts: GrpcServerOptions;
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE]: 'NOT_SERVING' });
  #port = 0;

  constructor(opts: GrpcServerOptions) {
    this.#opts = opts;
    this.#server = new grpc.Server(listenerOptions(opts));
    const service = packageDefinition[SERVICE] as grpc.ServiceDefinition;
    // grpc-js answers INTERNAL when a deserializer throws: ours never does, it hands the error on.
    const safe: grpc.ServiceDefinition = {
      ...service,
      Allocate: {
        ...service.Allocate!,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return decodeRequest(bytes);
          } catch (err) {
            return { [DECODE_ERROR]: err };
          }
        },
      },
    };
    this.#server.addService(safe, { Allocate: this.#allocate.bind(this) });
    for (const extra of opts.extraServices ?? []) {
      const impl: grpc.UntypedServiceImplementation = {};
      for (const [method, handler] of Object.entries(extra.handlers)) impl[method] = this.#unary(handler);
      this.#server.addService(extra.definition as grpc.ServiceDefinition, impl);
    }
    this.health.addToServer(this.#server);
    const extra = Object.fromEntries((opts.extraServices ?? []).map((e) => [e.name, e.definition])) as PackageDefinition;
    new ReflectionService(reflectionDefinition(packageDefinition, extra)).addToServer(this.#server);
  }

  async #allocate(
    call: grpc.ServerUnaryCall<WireAllocationRequest, WireAllocationResponse>,
    callback: grpc.sendUnaryData<WireAllocationResponse>,
  ): Promise<void> {
    const peer = peerOf(call);
    const first = (key: string): string | undefined => {
      const v = call.metadata.get(key)[0];
      return typeof v === 'string' ? v : undefined;
    };
    const deadline = call.getDeadline();
    const ctx = createCallContext({
      door: 'grpc',
      deadlineMs: deadline instanceof Date ? deadline.getTime() : deadline,
      defaultDeadlineMs: this.#opts.defaultDeadlineMs,
      requestId: first('x-request-id'),
      identity: peer.identity,
      idempotencyKey: first('idempotency-key'),
    });
    call.on('cancelled', () => ctx.cancel());
    const decodeError = (call.request as { [DECODE_ERROR]?: unknown })[DECODE_ERROR];
    const input = decodeError === undefined ? call.request : () => Promise.reject(decodeError);
    const outcome = peer.clientAuth
      ? await this.#opts.handler.handle(input, ctx)
      : this.#opts.handler.refuse(new AllocationError('UNAUTHENTICATED', 'client certificate lacks the clientAuth extended key usage'), ctx);
    const cluster = outcome.ok ? outcome.response.metadata?.annotations?.[CLUSTER_ANNOTATION] : undefined;
    if (outcome.ok && cluster) {
      const trailer = new grpc.Metadata();
      trailer.set(CLUSTER_TRAILER, cluster);
      callback(null, outcome.response, trailer);
    } else if (outcome.ok) callback(null, outcome.response);
    else callback(toServiceError(outcome.error) as grpc.ServiceError);
  }

  /** Adapts a transport-free handler: same client-certificate rules and error map as Allocate. */
  #unary(handler: UnaryHandler): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      const peer = peerOf(call);
      if (!peer.clientAuth) {
        callback(toServiceError(toWireError(new AllocationError('UNAUTHENTICATED', 'client certificate lacks the clientAuth extended key usage'))) as grpc.ServiceError);
        return;
      }
      const identity = peer.identity;
      let release: (() => void) | undefined;
      try {
        this.#opts.authorizer?.checkKnown(identity);
        release = this.#opts.admission?.admit(identity);
      } catch (err) {
        callback(toServiceError(toWireError(err)) as grpc.ServiceError);
        return;
      }
      const deadline = call.getDeadline();
      const ms = deadline instanceof Date ? deadline.getTime() : deadline;
      const controller = new AbortController();
      const timer = Number.isFinite(ms) ? setTimeout(() => controller.abort(), Math.min(MAX_TIMER_MS, Math.max(0, ms - Date.now()))) : undefined;
      call.on('cancelled', () => controller.abort());
      handler(call.request, { identity, signal: controller.signal }).then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(toWireError(err)) as grpc.ServiceError),
      ).finally(() => {
        clearTimeout(timer);
        release?.();
      });
    };
  }

  /** Binds and starts serving; returns the bound port. */
  async listen(): Promise<number> {
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${this.#opts.host}:${this.#opts.port}`, grpcServerCredentials(this.#opts.tls), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    for (const server of grpcJsServers(this.#server)) applySocketLimits(server, this.#opts.socketLimits ?? { maxConnections: 1024, handshakeTimeoutMs: 10_000 });
    // Until the certificates reach the listener it drops every connection.
    await this.#opts.tls.delivered();
    return this.#port;
  }

  get port(): number {
    return this.#port;
  }

  setServing(serving: boolean): void {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', s);
    this.health.setStatus(SERVICE, s);
  }

  /** Stops accepting; waits for in-flight calls up to graceMs, then cancels the rest. */
  async close(graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
