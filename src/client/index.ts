// Typed, promise-based client for the gateway (and for agones-allocator: same wire contract).
//   const client = createAllocatorClient({ address: 'localhost:8443', ca, cert, key });
//   const gs = await client.allocate({ namespace: 'default' }, { deadline: 2_000, idempotencyKey: 'match-42' });
import * as grpc from '@grpc/grpc-js';
import type { WireAllocationRequest, WireAllocationResponse } from '../allocation/wire.ts';
import { errorInfoOf, type ErrorInfo } from '../protocol/error-info.ts';
import { allocateMethod } from '../protocol/proto.ts';

export type AllocationRequest = WireAllocationRequest;
export type AllocationResponse = WireAllocationResponse;
export type { ErrorInfo };

/**
 * Channel options that respect agones-allocator's (and the gateway's) keepalive limit: servers
 * answer pings more often than once a minute with GOAWAY too_many_pings.
 */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 120_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
};

export interface AllocatorClientOptions {
  /** host:port of the gateway. */
  readonly address: string;
  /** PEM of the CA that signed the server certificate. */
  readonly ca: Buffer | string;
  /** PEM client certificate and key (mTLS). */
  readonly cert: Buffer | string;
  readonly key: Buffer | string;
  /** TLS server name to verify, when the address is an IP the certificate does not name. */
  readonly serverName?: string;
  readonly channelOptions?: grpc.ChannelOptions;
}

export interface CallOptions {
  /** Milliseconds from now, or an absolute Date. */
  readonly deadline?: number | Date;
  /** Repeats with the same key return the same allocation. */
  readonly idempotencyKey?: string;
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

/** A failed Allocate: the gRPC code and, when the server sent one, its ErrorInfo. */
export class AllocatorError extends Error {
  override readonly name = 'AllocatorError';
  readonly code: grpc.status;
  /** Code name, e.g. "RESOURCE_EXHAUSTED". */
  readonly codeName: string;
  readonly details: string;
  readonly errorInfo: ErrorInfo | null;

  constructor(err: grpc.ServiceError) {
    super(`${err.code} ${grpc.status[err.code] ?? 'UNKNOWN'}: ${err.details}`, { cause: err });
    this.code = err.code;
    this.codeName = grpc.status[err.code] ?? String(err.code);
    this.details = err.details;
    this.errorInfo = errorInfoOf(err);
  }

  /** ErrorInfo.reason, e.g. "NO_GAME_SERVER". */
  get reason(): string | null {
    return this.errorInfo?.reason ?? null;
  }
}

export interface AllocatorClient {
  allocate(request: AllocationRequest, options?: CallOptions): Promise<AllocationResponse>;
  close(): void;
}

const AllocationServiceClient = grpc.makeGenericClientConstructor({ Allocate: allocateMethod }, 'AllocationService');

export function createAllocatorClient(opts: AllocatorClientOptions): AllocatorClient {
  const buf = (v: Buffer | string) => (typeof v === 'string' ? Buffer.from(v) : v);
  const creds = grpc.credentials.createSsl(buf(opts.ca), buf(opts.key), buf(opts.cert));
  const channelOptions: grpc.ChannelOptions = { ...CLIENT_CHANNEL_OPTIONS, ...opts.channelOptions };
  if (opts.serverName) channelOptions['grpc.ssl_target_name_override'] = opts.serverName;
  const client = new AllocationServiceClient(opts.address, creds, channelOptions) as unknown as {
    Allocate: (
      req: AllocationRequest,
      md: grpc.Metadata,
      options: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: AllocationResponse) => void,
    ) => grpc.ClientUnaryCall;
  } & grpc.Client;
  return {
    allocate(request, options = {}) {
      const md = new grpc.Metadata();
      if (options.idempotencyKey) md.set('idempotency-key', options.idempotencyKey);
      if (options.requestId) md.set('x-request-id', options.requestId);
      const d = options.deadline;
      const callOptions: grpc.CallOptions = d === undefined ? {} : { deadline: d instanceof Date ? d : Date.now() + d };
      return new Promise((resolve, reject) => {
        const call = client.Allocate(request, md, callOptions, (err, res) => (err ? reject(new AllocatorError(err)) : resolve(res!)));
        options.signal?.addEventListener('abort', () => call.cancel(), { once: true });
      });
    },
    close: () => client.close(),
  };
}
