// The REST door: POST /gameserverallocation over HTTPS with the same mTLS as gRPC, proto3 JSON.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { AllocationError } from '../allocation/errors.ts';
import { parseExact } from '../allocation/exact-json.ts';
import type { WireAllocationRequest } from '../allocation/wire.ts';
import type { AllocateHandler } from './allocate-handler.ts';
import { createCallContext } from './call-context.ts';
import { RequestType, ResponseType } from '../protocol/proto.ts';
import { decodeRequest } from '../protocol/request-decoder.ts';
import { jsonToBinary, toJson } from '../protocol/proto-json.ts';
import { toJsonError, toWireError, type WireError } from './status.ts';
import { clientIdentity, hasClientAuthUsage, type TlsWatcher } from './tls.ts';
import { parseGrpcTimeout } from './grpc-timeout.ts';
import { applySocketLimits, type SocketLimits } from './socket-limits.ts';

const DEFAULT_SOCKET_LIMITS: SocketLimits = { maxConnections: 1024, handshakeTimeoutMs: 10_000 };

export const ALLOCATE_PATH = '/gameserverallocation';

export interface RestServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsWatcher;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly handler: AllocateHandler;
  readonly defaultDeadlineMs: number;
  readonly maxBodyBytes: number;
  /** Connection count and TLS handshake time limits. */
  readonly socketLimits?: SocketLimits;
  /** Extra GET routes (e.g. the OpenAPI document): path → [content type, body]. */
  readonly documents?: Readonly<Record<string, readonly [string, string | Buffer]>>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, w: WireError, status = w.http): void {
  send(res, status, toJsonError(w));
}

/** Reads the body up to a limit; null when it is larger. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export class RestServer {
  readonly #server: https.Server;
  readonly #opts: RestServerOptions;
  readonly #stopWatching: () => void;

  constructor(opts: RestServerOptions) {
    this.#opts = opts;
    const m = opts.tls.material;
    this.#server = https.createServer(
      { cert: m.cert, key: m.key, ca: m.ca, requestCert: true, rejectUnauthorized: true, minVersion: opts.minVersion },
      (req, res) => void this.#route(req, res),
    );
    // Slow or silent clients cannot hold sockets forever.
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.keepAliveTimeout = 60_000;
    applySocketLimits(this.#server, opts.socketLimits ?? DEFAULT_SOCKET_LIMITS);
    this.#stopWatching = opts.tls.onChange((next) => this.#server.setSecureContext({ cert: next.cert, key: next.key, ca: next.ca }));
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
      const body = await readBody(req, this.#opts.maxBodyBytes);
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
    else sendError(res, outcome.error, outcome.error.metadata.limitBytes !== undefined ? 413 : outcome.error.http);
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
