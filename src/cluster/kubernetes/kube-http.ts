// JSON requests to the API server with the KubeConfig's credentials over ONE multiplexed HTTP/2
// connection (watches keep HTTP/1.1 connections of their own, one each, as client-go's do).
// @kubernetes/client-node 2.0's generated APIs build a new dispatcher, hence a new TLS connection,
// per call, and a keep-alive HTTP/1.1 agent cost the gateway twice the CPU per write of HTTP/2:
// allocation writes are too hot for either.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseExact, stringifyExact } from '../../allocation/exact-json.ts';

/** A non-2xx answer from the API server (or a transport failure, status 0). */
export class KubernetesApiError extends Error {
  override readonly name = 'KubernetesApiError';
  /** HTTP status; 0 when no response arrived. */
  readonly status: number;
  /** metav1.Status reason, e.g. "Conflict", "NotFound", "Expired", "Forbidden". */
  readonly reason: string;

  constructor(status: number, reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.reason = reason;
  }
}

export interface KubeResponse {
  readonly status: number;
  /** Parsed JSON body (undefined if the body is not JSON). */
  readonly body: unknown;
}

export interface KubeRequestOptions {
  readonly body?: unknown;
  readonly signal?: AbortSignal;
  /** Socket inactivity timeout; default 30 s. */
  readonly timeoutMs?: number;
  /** Content type of the body; default application/json (a PATCH needs e.g. application/merge-patch+json). */
  readonly contentType?: string;
}

/** One event of a watch stream. */
export interface WatchEvent {
  readonly type: string;
  readonly object: unknown;
}

export interface WatchOptions {
  readonly signal: AbortSignal;
  /** The connection is dropped (and the watch rejects) after this long without a byte. */
  readonly idleTimeoutMs: number;
  /** Called once the server accepted the watch (HTTP 200). */
  readonly onOpen?: () => void;
}

interface Credentials {
  readonly headers: Readonly<Record<string, string>>;
  /** Keep-alive connections for requests to an http: server (kubectl proxy); https: ones use HTTP/2. */
  readonly agent: http.Agent;
  /** Connections for watches: long-lived, so kept apart from (and not limiting) the request pool. */
  readonly watchAgent: http.Agent;
  readonly expiresAt: number;
  readonly tls: readonly (Buffer | string | undefined)[];
}

/** HTTP/2 receive window, per stream and per connection. */
const RECEIVE_WINDOW = 16 * 1024 * 1024;

/** How long resolved credentials (token, client certificate) are reused before asking the KubeConfig again. */
const CREDENTIALS_TTL_MS = 10_000;
/** After a request times out, the connection must answer a PING within this long or is replaced. */
const PING_TIMEOUT_MS = 2_000;

/** The HTTP/2 connection requests share, for one set of TLS credentials. */
interface Connection {
  readonly session: http2.ClientHttp2Session;
  readonly tls: readonly (Buffer | string | undefined)[];
  /** The TLS connection was established: a request failing before that was never sent. */
  connected: boolean;
  /** GOAWAY received, closed or failed: no new requests on it. */
  done: boolean;
  /** Requests in flight: the connection keeps the process alive only while there are some. */
  inFlight: number;
}

/** Minimal API server client: one request = one JSON round trip; HTTP errors are returned, not thrown. */
export class KubeHttp {
  readonly #kubeConfig: KubeConfig;
  readonly #base: URL;
  #credentials: Credentials | undefined;
  #pending: Promise<Credentials> | undefined;
  #connection: Connection | undefined;
  #closed = false;

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.#kubeConfig = kubeConfig;
    this.#base = new URL(cluster.server.endsWith('/') ? cluster.server : `${cluster.server}/`);
  }

  /** The API server's base URL. */
  get server(): string {
    return this.#base.href;
  }

  /** Sends one request; resolves with any HTTP status, rejects on transport failure or abort (with the signal's reason). */
  async request(method: string, path: string, opts: KubeRequestOptions = {}): Promise<KubeResponse> {
    opts.signal?.throwIfAborted();
    if (this.#closed) throw new KubernetesApiError(0, 'Closed', 'client closed');
    const creds = await this.#resolveCredentials();
    opts.signal?.throwIfAborted();
    const url = new URL(path.replace(/^\//, ''), this.#base);
    const payload = opts.body === undefined ? undefined : Buffer.from(stringifyExact(opts.body));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    if (url.protocol === 'https:') return await this.#request2(creds, method, url, payload, timeoutMs, opts);
    const headers: Record<string, string> = { ...creds.headers, accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return await new Promise<KubeResponse>((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: creds.agent, signal: opts.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: jsonBody(chunks) }));
        res.on('error', (err) => reject(this.#transportError(err, method, url, opts.signal)));
      });
      // code ETIMEDOUT: the request was sent and no answer came, so a write's outcome is unknown
      req.setTimeout(timeoutMs, () => req.destroy(timedOut(timeoutMs)));
      req.on('error', (err) => reject(this.#transportError(err, method, url, opts.signal)));
      req.end(payload);
    });
  }

  /** One request on the shared HTTP/2 connection. */
  #request2(creds: Credentials, method: string, url: URL, payload: Buffer | undefined, timeoutMs: number, opts: KubeRequestOptions): Promise<KubeResponse> {
    const conn = this.#connect(creds);
    const headers: http2.OutgoingHttpHeaders = { ...creds.headers, ':method': method, ':path': `${url.pathname}${url.search}`, accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    if (conn.inFlight++ === 0) conn.session.ref();
    const finished = (): void => {
      if (--conn.inFlight === 0 && !conn.session.destroyed) conn.session.unref();
    };
    return new Promise<KubeResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        finished();
        // a request that never had a connection was never sent: the store may say "not applied"
        reject(this.#transportError(conn.connected ? err : Object.assign(new Error(err.message, { cause: err }), { code: 'ECONNREFUSED' }), method, url, opts.signal));
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = conn.session.request(headers, { endStream: payload === undefined, ...(opts.signal ? { signal: opts.signal } : {}) });
      } catch (err) {
        this.#retire(conn);
        return fail(err as Error);
      }
      let status = 0;
      let json = false;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        status = Number(h[':status']);
        json = String(h['content-type'] ?? '').startsWith('application/json');
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        // node ends a stream cut with its connection (a crashed API server) or reset, with or
        // without a response so far: that is a transport failure, not an answer
        if (status === 0) return fail(new Error(`stream ended before its answer (HTTP/2 code ${stream.rstCode ?? 'none'})`));
        if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) return fail(new Error(`stream cut during its answer (HTTP/2 code ${stream.rstCode})`));
        const body = jsonBody(chunks);
        // a reset with NO_ERROR mid-body leaves it cut short
        if (json && body === undefined && chunks.length > 0) return fail(new Error('answer cut short (not complete JSON)'));
        if (settled) return;
        settled = true;
        finished();
        resolve({ status, body });
      });
      stream.on('error', fail);
      stream.on('close', () => fail(new Error(`stream closed before its answer (HTTP/2 code ${stream.rstCode})`)));
      // code ETIMEDOUT: the request was sent and no answer came, so a write's outcome is unknown
      stream.setTimeout(timeoutMs, () => {
        fail(timedOut(timeoutMs));
        stream.close(http2.constants.NGHTTP2_CANCEL);
        this.#probe(conn);
      });
      if (payload !== undefined) stream.end(payload);
    });
  }

  /** The shared connection for these credentials, opened on first use and after the last one ended. */
  #connect(creds: Credentials): Connection {
    const current = this.#connection;
    if (current !== undefined && !current.done && sameTls(current.tls, creds.tls)) return current;
    if (current !== undefined) this.#retire(current);
    const [ca, cert, key, rejectUnauthorized, servername] = creds.tls;
    const session = http2.connect(this.#base.origin, {
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(rejectUnauthorized === 'false' ? { rejectUnauthorized: false } : {}),
      ...(servername !== undefined ? { servername: String(servername) } : {}),
      // a list page is MBs: with HTTP/2's default 64 KiB windows the API server would wait for a window update every 64 KiB
      settings: { initialWindowSize: RECEIVE_WINDOW },
    });
    const conn: Connection = { session, tls: creds.tls, connected: false, done: false, inFlight: 0 };
    session.once('connect', () => {
      conn.connected = true;
      session.setLocalWindowSize(RECEIVE_WINDOW);
    });
    session.once('goaway', () => this.#retire(conn));
    session.once('close', () => this.#retire(conn));
    session.on('error', () => this.#retire(conn)); // each stream reports it too
    session.unref(); // idle, it must not keep the process alive
    this.#connection = conn;
    return conn;
  }

  /** No new requests on this connection; those in flight finish on it. */
  #retire(conn: Connection): void {
    conn.done = true;
    if (this.#connection === conn) this.#connection = undefined;
    if (!conn.session.closed && !conn.session.destroyed) conn.session.close();
  }

  /** A request timed out: a connection that also misses a PING is dead (black-holed), not busy. */
  #probe(conn: Connection): void {
    if (conn.done || conn.session.destroyed) return;
    const timer = setTimeout(() => {
      this.#retire(conn);
      conn.session.destroy(new Error(`the API server did not answer a PING within ${PING_TIMEOUT_MS} ms`));
    }, PING_TIMEOUT_MS);
    timer.unref();
    const sent = conn.session.ping((err) => {
      if (!err) clearTimeout(timer);
    });
    if (!sent) clearTimeout(timer);
  }

  /**
   * Streams a watch (`path` with watch=1 in its query): calls onEvent per event; resolves when the
   * server ends the stream; rejects on a non-200 answer (KubernetesApiError), a transport failure,
   * the idle timeout, or abort (with the signal's reason).
   */
  async watch(path: string, onEvent: (event: WatchEvent) => void, opts: WatchOptions): Promise<void> {
    opts.signal.throwIfAborted();
    if (this.#closed) throw new KubernetesApiError(0, 'Closed', 'client closed');
    const creds = await this.#resolveCredentials();
    opts.signal.throwIfAborted();
    const url = new URL(path.replace(/^\//, ''), this.#base);
    const send = url.protocol === 'http:' ? http.request : https.request;
    const headers = { ...creds.headers, accept: 'application/json' };
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => reject(this.#transportError(err, 'WATCH', url, opts.signal));
      const req = send(url, { method: 'GET', headers, agent: creds.watchAgent, signal: opts.signal }, (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              body = undefined;
            }
            const st = statusOf({ status: res.statusCode ?? 0, body });
            reject(new KubernetesApiError(res.statusCode ?? 0, st.reason, `watch ${url.pathname}: ${st.message}`));
          });
          res.on('error', fail);
          return;
        }
        opts.onOpen?.();
        let pending = '';
        res.on('data', (chunk: string) => {
          pending += chunk;
          for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            if (line.trim() === '') continue;
            let event: WatchEvent;
            try {
              event = parseExact(line) as WatchEvent;
            } catch (err) {
              req.destroy(new Error(`undecodable watch event: ${(err as Error).message}`));
              return;
            }
            onEvent(event);
          }
        });
        res.on('end', () => resolve());
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(new Error('watch connection closed mid-stream'));
        });
      });
      req.setTimeout(opts.idleTimeoutMs, () => req.destroy(new Error(`watch idle for ${opts.idleTimeoutMs} ms`)));
      req.on('error', fail);
      req.end();
    });
  }

  /** Closes all connections; later requests fail. */
  close(): void {
    this.#closed = true;
    this.#connection?.session.destroy();
    this.#connection = undefined;
    this.#credentials?.agent.destroy();
    this.#credentials?.watchAgent.destroy();
  }

  #transportError(err: Error, method: string, url: URL, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason;
    return new KubernetesApiError(0, 'TransportError', `${method} ${url.pathname}: ${err.message}`, { cause: err });
  }

  async #resolveCredentials(): Promise<Credentials> {
    const c = this.#credentials;
    if (c !== undefined && Date.now() < c.expiresAt) return c;
    this.#pending ??= this.#loadCredentials().finally(() => (this.#pending = undefined));
    return await this.#pending;
  }

  async #loadCredentials(): Promise<Credentials> {
    const opts: https.RequestOptions & { headers?: Record<string, string> } = { headers: {} };
    await this.#kubeConfig.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = String(v);
    if (typeof opts.auth === 'string') headers['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    const tls = [opts.ca, opts.cert, opts.key, String(opts.rejectUnauthorized), opts.servername].map((v) =>
      Buffer.isBuffer(v) || typeof v === 'string' || v === undefined ? v : String(v),
    );
    const previous = this.#credentials;
    let agent: http.Agent;
    let watchAgent: http.Agent;
    if (previous !== undefined && sameTls(previous.tls, tls)) {
      agent = previous.agent;
      watchAgent = previous.watchAgent;
    } else {
      const agentOpts = {
        keepAlive: true,
        keepAliveMsecs: 30_000,
        maxSockets: 64,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
      };
      const watchOpts = { ...agentOpts, keepAlive: false, maxSockets: Infinity };
      const Agent = this.#base.protocol === 'http:' ? http.Agent : https.Agent;
      agent = new Agent(agentOpts);
      watchAgent = new Agent(watchOpts);
      // let in-flight requests on the old agents finish; watches end by themselves within minutes
      if (previous !== undefined) setTimeout(() => previous.agent.destroy(), 60_000).unref();
    }
    this.#credentials = { headers, agent, watchAgent, tls, expiresAt: Date.now() + CREDENTIALS_TTL_MS };
    return this.#credentials;
  }
}

/** The parsed JSON of a response (undefined if empty or not JSON). */
function jsonBody(chunks: readonly Buffer[]): unknown {
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text === '' ? undefined : parseExact(text);
  } catch {
    return undefined;
  }
}

function timedOut(ms: number): Error {
  return Object.assign(new Error(`no response within ${ms} ms`), { code: 'ETIMEDOUT' });
}

function sameTls(a: readonly (Buffer | string | undefined)[], b: readonly (Buffer | string | undefined)[]): boolean {
  return a.every((x, i) => {
    const y = b[i];
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
    return x === y;
  });
}

/** The metav1.Status message and reason of an error response. */
export function statusOf(res: KubeResponse): { message: string; reason: string } {
  const b = res.body as { message?: unknown; reason?: unknown } | undefined;
  return {
    message: typeof b?.message === 'string' ? b.message : `HTTP ${res.status}`,
    reason: typeof b?.reason === 'string' ? b.reason : '',
  };
}
