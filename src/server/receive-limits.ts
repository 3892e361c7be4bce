// Bounds on gRPC request bytes received but not yet complete. grpc-js reads every stream's DATA
// into memory until its message is whole (up to the message limit each, on every concurrent
// stream of every connection) before anything is decoded or admitted, and keeps a stream whose
// message never finishes for as long as the client likes. Here each unfinished request is
// counted against its connection, its client identity and the door, and is answered and reset
// when it would pass one of them or outlives the call's deadline or the receive timeout.
import http2 from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AllocationError } from '../allocation/errors.ts';
import { parseGrpcTimeout } from './grpc-timeout.ts';
import { toServiceError, toWireError } from './status.ts';
import type { Metadata } from '@grpc/grpc-js';

export interface ReceiveLimits {
  /** Unfinished request bytes one connection may hold. */
  readonly perConnectionBytes: number;
  /** Unfinished request bytes across all connections of the door. */
  readonly totalBytes: number;
  /** Of totalBytes, what one client identity may hold. */
  readonly perClientBytes: number;
  /** A request must arrive in full within this long of its headers; the call's deadline may cut it shorter. */
  readonly timeoutMs: number;
}

interface Holder {
  pending: number;
}

const MiB = 1024 * 1024;

/** Trailers-only gRPC reply carrying the error's status and ErrorInfo. */
function trailersOnly(err: AllocationError): http2.OutgoingHttpHeaders {
  const e = toServiceError(toWireError(err));
  return {
    ':status': 200,
    'content-type': 'application/grpc+proto',
    'grpc-status': String(e.code),
    'grpc-message': encodeURI(e.details ?? ''),
    ...(e.metadata as Metadata).toHttp2Headers(),
  };
}

/** Applies the limits to the HTTP/2 servers of the gRPC door; `identityOf` names a connection's client. */
export function applyReceiveLimits(servers: readonly NetServer[], limits: ReceiveLimits, identityOf: (socket: TLSSocket) => string): void {
  const total: Holder = { pending: 0 };
  const clients = new Map<string, Holder>();
  const connections = new WeakMap<http2.ServerHttp2Session, { holder: Holder; identity: string }>();

  const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    const session = stream.session as http2.ServerHttp2Session | undefined;
    if (!session) return;
    let conn = connections.get(session);
    if (!conn) {
      conn = { holder: { pending: 0 }, identity: identityOf(session.socket as TLSSocket) };
      connections.set(session, conn);
    }
    const { holder, identity } = conn;
    let client = clients.get(identity);
    if (!client) clients.set(identity, (client = { pending: 0 }));
    const holders = [holder, client, total];
    let pending = 0;
    let open = true;
    const release = (): void => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      for (const h of holders) h.pending -= pending;
      if (client.pending === 0) clients.delete(identity);
      pending = 0;
    };
    const refuse = (err: AllocationError): void => {
      release();
      if (stream.destroyed || stream.closed) return;
      if (!stream.headersSent) stream.respond(trailersOnly(err), { endStream: true });
      // The rest of the message is not wanted: RST_STREAM (NO_ERROR) once the reply is out.
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    const header = headers['grpc-timeout'];
    const deadlineMs = parseGrpcTimeout(Array.isArray(header) ? header[0] : header);
    const timer = setTimeout(
      () =>
        refuse(
          deadlineMs !== null && deadlineMs <= limits.timeoutMs
            ? new AllocationError('DEADLINE_EXCEEDED', "the caller's deadline passed before the request message arrived")
            : new AllocationError('DEADLINE_EXCEEDED', `the request message was not received in full within ${limits.timeoutMs} ms`, { metadata: { bodyTimeoutMs: String(limits.timeoutMs) } }),
        ),
      Math.min(limits.timeoutMs, deadlineMs ?? Infinity),
    );
    stream.on('data', (chunk: Buffer) => {
      if (!open) return;
      pending += chunk.length;
      for (const h of holders) h.pending += chunk.length;
      const over =
        holder.pending > limits.perConnectionBytes ? ['connection', limits.perConnectionBytes]
        : client.pending > limits.perClientBytes ? ['client identity', limits.perClientBytes]
        : total.pending > limits.totalBytes ? ['gateway', limits.totalBytes]
        : null;
      if (over) {
        refuse(
          new AllocationError('OVERLOADED', `this ${over[0]} holds its limit of ${Math.round((over[1] as number) / MiB)} MiB of unfinished request bytes; retry with backoff`, {
            metadata: { holder: String(over[0]), pendingLimitBytes: String(over[1]) },
          }),
        );
      }
    });
    stream.once('end', release);
    stream.once('close', release);
  };
  for (const s of servers) s.on('stream', onStream);
}
