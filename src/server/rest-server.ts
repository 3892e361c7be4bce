// The REST door: POST /gameserverallocation over HTTPS with the same mTLS as gRPC, proto3 JSON.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { AllocationError } from '../allocation/errors.ts';
import { parseExact } from '../allocation/exact-json.ts';
import type { WireAllocationRequest } from '../allocation/wire.ts';
import type { AllocateHandler } from './allocate-handler.ts';
import { createCallContext, MAX_TIMER_MS } from './call-context.ts';
import { RequestType, ResponseType } from '../protocol/proto.ts';
import { decodeRequest } from '../protocol/request-decoder.ts';
import { jsonToBinary, toJson } from '../protocol/proto-json.ts';
import { toJsonError, toWireError, type WireError } from './status.ts';
import { clientIdentity, hasClientAuthUsage, type TlsWatcher } from './tls.ts';
import { parseGrpcTimeout } from './grpc-timeout.ts';
import { applySocketLimits, DEFAULT_SOCKET_LIMITS, type SocketLimits } from './socket-limits.ts';
import { msToExpiry, parseCaBundle, stillTrusted } from './client-trust.ts';

export const ALLOCATE_PATH = '/gameserverallocation';

export interface RestServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsWatcher;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly handler: AllocateHandler;
  readonly defaultDeadlineMs: number;
  readonly maxBodyBytes: number;
  /** The body must arrive in full within this long of the headers (the call's deadline may cut it shorter). */
  readonly bodyTimeoutMs?: number;
  /** Connection count and TLS handshake time limits. */
  readonly socketLimits?: SocketLimits;
  /** Connections older than this (±10 %), or past their client certificate's expiry, are closed once idle; default 30 min. */
  readonly maxConnectionAgeMs?: number;
  /** A call in flight when the age is up gets this long before the connection is cut; default 30 s. */
  readonly maxConnectionAgeGraceMs?: number;
  /** Extra GET routes (e.g. the OpenAPI document): path → [content type, body]. */
  readonly documents?: Readonly<Record<string, readonly [string, string | Buffer]>>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, w: WireError, status = w.http, headers: Record<string, string> = {}): void {
  send(res, status, toJsonError(w), headers);
}

/**
 * Reads the body up to a limit (null when it is larger), until the call's signal aborts (its
 * deadline, or the client left) and within timeoutMs: a body sent a byte at a time cannot hold
 * an admission slot past either.
 */
/** How long a body may still arrive once the call's deadline has passed. */
const BODY_DEADLINE_GRACE_MS = 1_000;

function readBody(req: IncomingMessage, limit: number, signal: AbortSignal, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (fn: () => void): void => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      signal.removeEventListener('abort', onDeadline);
      req.off('data', onData).off('end', onEnd).off('error', onError);
      fn();
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) settle(() => resolve(null));
      else chunks.push(chunk);
    };
    const onEnd = (): void => settle(() => resolve(Buffer.concat(chunks)));
    const onError = (err: Error): void => settle(() => reject(err));
    const onAbort = (): void =>
      settle(() =>
        reject(
          (signal.reason as Error | undefined)?.name === 'TimeoutError'
            ? new AllocationError('DEADLINE_EXCEEDED', "the caller's deadline passed before the request body arrived", { metadata: { field: '(body)' } })
            : new AllocationError('CANCELLED', 'the caller cancelled the request'),
        ),
      );
    const timer = setTimeout(
      () => settle(() => reject(new AllocationError('DEADLINE_EXCEEDED', `(body): not received in full within ${timeoutMs} ms`, { metadata: { field: '(body)', bodyTimeoutMs: String(timeoutMs) } }))),
      timeoutMs,
    );
    // A body sent with its headers is still read (and judged: an invalid request is a 400 even when
    // its deadline was 0); a body still trickling in when the deadline passes gets no more than this.
    let graceTimer: NodeJS.Timeout | undefined;
    const onDeadline = (): void => {
      graceTimer ??= setTimeout(onAbort, BODY_DEADLINE_GRACE_MS);
    };
    if (signal.aborted) onDeadline();
    else signal.addEventListener('abort', onDeadline, { once: true });
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

/** HTTP status for a refusal: body limits get their own (413, 408); the rest follow the reason. */
function httpStatus(w: WireError): number {
  if (w.metadata.limitBytes !== undefined) return 413;
  if (w.metadata.bodyTimeoutMs !== undefined) return 408;
  return w.http;
}

export class RestServer {
  readonly #server: https.Server;
  readonly #opts: RestServerOptions;
  readonly #stopWatching: () => void;
  // Calls in progress per connection, and the connections past their age.
  readonly #busy = new WeakMap<Socket, number>();
  readonly #responding = new WeakMap<Socket, ServerResponse>();
  readonly #expired = new WeakSet<Socket>();
  readonly #sockets = new Set<TLSSocket>();

  constructor(opts: RestServerOptions) {
    this.#opts = opts;
    const m = opts.tls.material;
    this.#server = https.createServer(
      {
        cert: m.cert, key: m.key, ca: m.ca, requestCert: true, rejectUnauthorized: true, minVersion: opts.minVersion,
        // The header and request timeouts below are checked this often (Node's default, 30 s, let a
        // slow-header connection live up to 40 s instead of 10).
        connectionsCheckingInterval: 1_000,
      },
      (req, res) => this.#serve(req, res),
    );
    this.#server.on('secureConnection', (socket: TLSSocket) => this.#limitAge(socket));
    // Slow or silent clients cannot hold sockets forever.
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.keepAliveTimeout = 60_000;
    applySocketLimits(this.#server, opts.socketLimits ?? DEFAULT_SOCKET_LIMITS, (s) => clientIdentity(s.getPeerCertificate()) ?? '(anonymous)');
    this.#stopWatching = opts.tls.onChange((next) => {
      this.#server.setSecureContext({ cert: next.cert, key: next.key, ca: next.ca });
      // Connections of a CA no longer trusted end now, not at their max age.
      const cas = parseCaBundle(next.ca);
      for (const socket of this.#sockets) if (!stillTrusted(socket, cas)) this.#expire(socket);
    });
  }

  /** Counts the call on its connection, so a connection past its age closes only when idle. */
  #serve(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#busy.set(socket, (this.#busy.get(socket) ?? 0) + 1);
    this.#responding.set(socket, res);
    if (this.#expired.has(socket)) res.setHeader('connection', 'close');
    res.once('close', () => {
      const left = (this.#busy.get(socket) ?? 1) - 1;
      this.#busy.set(socket, left);
      if (left === 0 && this.#expired.has(socket)) socket.end();
    });
    void this.#route(req, res);
  }

  /**
   * Bounds a connection's life by the configured age and its client certificate's expiry: a
   * kept-alive connection of a since-removed CA or an expired certificate must handshake again.
   */
  #limitAge(socket: TLSSocket): void {
    const maxAgeMs = (this.#opts.maxConnectionAgeMs ?? 30 * 60_000) * (0.9 + Math.random() * 0.2);
    const timer = setTimeout(() => this.#expire(socket), Math.min(maxAgeMs, msToExpiry(socket), MAX_TIMER_MS)).unref();
    this.#sockets.add(socket);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#sockets.delete(socket);
    });
  }

  /** Closes the connection now if idle, else after the call in flight (grace at most). */
  #expire(socket: TLSSocket): void {
    if (this.#expired.has(socket)) return;
    this.#expired.add(socket);
    if (!this.#busy.get(socket)) {
      socket.end();
      return;
    }
    const res = this.#responding.get(socket);
    if (res && !res.headersSent) res.setHeader('connection', 'close');
    const cut = setTimeout(() => socket.destroy(), this.#opts.maxConnectionAgeGraceMs ?? 30_000).unref();
    socket.once('close', () => clearTimeout(cut));
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const docs = this.#opts.documents;
    const doc = path !== undefined && docs !== undefined && Object.hasOwn(docs, path) ? docs[path] : undefined;
    if (doc && req.method === 'GET') {
      res.writeHead(200, { 'content-type': doc[0] });
      res.end(doc[1]);
      return;
    }
    if (path !== ALLOCATE_PATH) return send(res, 404, { code: 5, message: `no route for ${path}`, details: [] });
    if (req.method !== 'POST') {
      return send(res, 405, { code: 12, message: `method ${req.method} not allowed; use POST`, details: [] }, { allow: 'POST' });
    }
    const cert = (req.socket as TLSSocket).getPeerCertificate();
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const timeout = parseGrpcTimeout(header('grpc-timeout'));
    const ctx = createCallContext({
      door: 'rest',
      deadlineMs: timeout === null ? Infinity : Date.now() + timeout,
      defaultDeadlineMs: this.#opts.defaultDeadlineMs,
      requestId: header('x-request-id'),
      identity: clientIdentity(cert),
      idempotencyKey: header('idempotency-key'),
      traceparent: header('traceparent'),
      tracestate: header('tracestate'),
    });
    if (!hasClientAuthUsage(cert)) {
      const refused = this.#opts.handler.refuse(new AllocationError('UNAUTHENTICATED', 'client certificate lacks the clientAuth extended key usage'), ctx);
      return sendError(res, (refused as { error: WireError }).error);
    }
    res.on('close', () => {
      if (!res.writableFinished) ctx.cancel();
    });
    // The body is read only once the call is admitted: a flood is refused without buffering it.
    const decode = async (): Promise<WireAllocationRequest> => {
      const body = await readBody(req, this.#opts.maxBodyBytes, ctx.signal, this.#opts.bodyTimeoutMs ?? 10_000);
      if (body === null) {
        throw new AllocationError('INVALID_FIELD', `(body): larger than ${this.#opts.maxBodyBytes} bytes`, { metadata: { field: '(body)', limitBytes: String(this.#opts.maxBodyBytes) } });
      }
      try {
        // An empty body is an empty request, as in agones-allocator.
        const json: unknown = body.length === 0 ? {} : parseExact(body.toString('utf8'));
        return decodeRequest(jsonToBinary(json, RequestType));
      } catch (err) {
        if (err instanceof AllocationError) throw err;
        throw new AllocationError('INVALID_FIELD', `(body): not valid JSON: ${(err as Error).message.slice(0, 200)}`, { metadata: { field: '(body)' } });
      }
    };
    const outcome = await this.#opts.handler.handle(decode, ctx);
    if (outcome.ok) send(res, 200, toJson(outcome.response as unknown as Record<string, unknown>, ResponseType));
    // A body left unread (refused before it was read, too large, too slow) is not waited for.
    else sendError(res, outcome.error, httpStatus(outcome.error), req.complete ? {} : { connection: 'close' });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const addr = this.#server.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  /** Handshake failures (probes, bad certs) are routine: report them to a quiet sink. */
  onTlsError(fn: (err: Error) => void): void {
    this.#server.on('tlsClientError', fn);
  }

  async close(graceMs: number): Promise<void> {
    this.#stopWatching();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => this.#server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  }
}
