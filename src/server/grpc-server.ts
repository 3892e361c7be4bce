// The gRPC door: AllocationService over mTLS, plus grpc.health.v1 and server reflection.
import * as grpc from '@grpc/grpc-js';
import type { TLSSocket } from 'node:tls';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { WireAllocationRequest, WireAllocationResponse } from '../allocation/wire.ts';
import type { AllocateHandler } from './allocate-handler.ts';
import { createCallContext, MAX_TIMER_MS } from './call-context.ts';
import { packageDefinition, protoRoot } from '../protocol/proto.ts';
import { boundedDecoder, decodeRequest } from '../protocol/request-decoder.ts';
import { reflectionDefinition } from '../protocol/reflection.ts';
import type { PackageDefinition } from '@grpc/proto-loader';
import { toServiceError, toWireError } from './status.ts';
import { AllocationError } from '../allocation/errors.ts';
import { CLUSTER_ANNOTATION } from '../allocation/reserved-annotations.ts';
import { clientIdentity, grpcServerCredentials, hasClientAuthUsage, type TlsWatcher } from './tls.ts';
import type { Admission } from './admission.ts';
import type { Authorizer } from './authorization.ts';
import { applySocketLimits, DEFAULT_SOCKET_LIMITS, grpcJsServers, type SocketLimits } from './socket-limits.ts';
import { applyReceiveLimits, type ReceiveLimits } from './receive-limits.ts';
import { enforceClientTrust } from './client-trust.ts';

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
export function listenerOptions(o: Pick<GrpcServerOptions, 'maxReceiveMessageBytes' | 'maxConcurrentStreams' | 'maxSessionMemoryMiB' | 'maxConnectionAgeMs' | 'maxConnectionAgeGraceMs'>): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': o.maxReceiveMessageBytes,
    'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
    'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
    'grpc.max_connection_idle_ms': KEEPALIVE.idleMs,
    // A caller cannot open unbounded streams or buffer unbounded frames on one connection.
    'grpc.max_concurrent_streams': o.maxConcurrentStreams ?? 128,
    'grpc-node.max_session_memory': o.maxSessionMemoryMiB ?? 16,
    // Connections authenticated by a since-removed CA or a since-expired certificate do not live on.
    'grpc.max_connection_age_ms': o.maxConnectionAgeMs ?? 30 * 60_000,
    'grpc.max_connection_age_grace_ms': o.maxConnectionAgeGraceMs ?? 30_000,
    // Nothing reads channelz here (no channelz service is exposed), and its per-call bookkeeping costs CPU.
    'grpc.enable_channelz': 0,
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
  /** Connections older than this get GOAWAY (grpc-js adds ±10 % jitter), as do those whose client certificate expires or whose CA is removed; default 30 min. */
  readonly maxConnectionAgeMs?: number;
  /** Calls in flight after that GOAWAY get this long before the connection is cut; default 30 s. */
  readonly maxConnectionAgeGraceMs?: number;
  /** Applied to the extra services too (Allocate gets it through the handler). */
  readonly admission?: Admission;
  readonly authorizer?: Authorizer;
  /** Connection count and TLS handshake time limits. */
  readonly socketLimits?: SocketLimits;
  /** Bounds on request bytes received but not yet complete, and on how long receiving may take. */
  readonly receiveLimits?: ReceiveLimits;
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

/**
 * The service with each listed method's deserializer replaced by a bounded decoder that never
 * throws (grpc-js answers INTERNAL when one does): a decode error rides along to the handler.
 */
function withSafeDecoding(service: grpc.ServiceDefinition, decoders: Record<string, (bytes: Buffer) => unknown>): grpc.ServiceDefinition {
  const safe: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...service };
  for (const [method, decode] of Object.entries(decoders)) {
    safe[method] = {
      ...service[method]!,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return { [DECODE_ERROR]: err };
        }
      },
    };
  }
  return safe as grpc.ServiceDefinition;
}

/** The decode error a safe deserializer attached to the request, if any. */
function decodeErrorOf(request: unknown): unknown {
  return (request as { [DECODE_ERROR]?: unknown } | null)?.[DECODE_ERROR];
}

export class GrpcServer {
  readonly #server: grpc.Server;
  readonly #opts: GrpcServerOptions;
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE]: 'NOT_SERVING' });
  #port = 0;
  #stopTrust: () => void = () => {};

  constructor(opts: GrpcServerOptions) {
    this.#opts = opts;
    this.#server = new grpc.Server(listenerOptions(opts));
    const service = packageDefinition[SERVICE] as grpc.ServiceDefinition;
    this.#server.addService(withSafeDecoding(service, { Allocate: decodeRequest }), { Allocate: this.#allocate.bind(this) });
    for (const extra of opts.extraServices ?? []) {
      const impl: grpc.UntypedServiceImplementation = {};
      for (const [method, handler] of Object.entries(extra.handlers)) impl[method] = this.#unary(handler);
      // Every method gets Allocate's bounded decoding: the generic deserializer would decode
      // millions of empty entries (seconds of CPU, a GiB of heap) before any check.
      const definition = extra.definition as grpc.ServiceDefinition;
      const pkg = extra.name.slice(0, extra.name.lastIndexOf('.'));
      const decoders = Object.fromEntries(
        Object.entries(definition).map(([method, m]) => {
          const typeName = (m as unknown as { requestType: { type: { name: string } } }).requestType.type.name;
          return [method, boundedDecoder(protoRoot.lookupType(`${pkg}.${typeName}`), m.requestDeserialize)];
        }),
      );
      this.#server.addService(withSafeDecoding(definition, decoders), impl);
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
      traceparent: first('traceparent'),
      tracestate: first('tracestate'),
    });
    call.on('cancelled', () => ctx.cancel());
    const decodeError = decodeErrorOf(call.request);
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
        const decodeError = decodeErrorOf(call.request);
        if (decodeError !== undefined) throw decodeError;
      } catch (err) {
        release?.();
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
    const servers = grpcJsServers(this.#server);
    const identityOf = (socket: TLSSocket): string => clientIdentity(socket.getPeerCertificate()) ?? '(anonymous)';
    for (const server of servers) applySocketLimits(server, this.#opts.socketLimits ?? DEFAULT_SOCKET_LIMITS, identityOf);
    const session = (this.#opts.maxSessionMemoryMiB ?? 16) * 1024 * 1024;
    applyReceiveLimits(servers, this.#opts.receiveLimits ?? { perConnectionBytes: session, perClientBytes: 32 * 1024 * 1024, totalBytes: 128 * 1024 * 1024, timeoutMs: 10_000 }, identityOf);
    this.#stopTrust = enforceClientTrust(servers, this.#opts.tls, this.#opts.maxConnectionAgeGraceMs ?? 30_000);
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
    this.#stopTrust();
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
