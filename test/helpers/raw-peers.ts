// Peers built from raw sockets, for tests of connection and request limits: silent TCP
// connections, HTTP/2 sessions that frame gRPC messages by hand (partial ones included), and
// HTTP/1.1 requests whose body trickles. Each may come from any loopback source address.
import { connect, type Socket } from 'node:net';
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Pair, TestCerts } from './certs.ts';

/** TCP connections that never start TLS; `closed` resolves with ms from open to the gateway closing each. */
export function silentSockets(port: number, count: number, localAddress = '127.0.0.1'): { sockets: Socket[]; closed: Promise<number>[]; destroy(): void } {
  const sockets: Socket[] = [];
  const closed: Promise<number>[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = Date.now();
    const s = connect({ port, host: '127.0.0.1', localAddress });
    s.on('error', () => {});
    closed.push(new Promise((resolve) => s.once('close', () => resolve(Date.now() - t0))));
    sockets.push(s);
  }
  return { sockets, closed, destroy: () => sockets.forEach((s) => s.destroy()) };
}

/** How many of `closed` settle within `ms`. */
export async function closedWithin(closed: readonly Promise<number>[], ms: number): Promise<number> {
  const settled = await Promise.all(closed.map((p) => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())])));
  return settled.filter((v) => v !== null).length;
}

export interface PeerOptions {
  readonly pair?: Pair;
  readonly localAddress?: string;
}

function tlsOptions(certs: TestCerts, o: PeerOptions) {
  const pair = o.pair ?? certs.client;
  return { ca: readFileSync(certs.caFile), cert: readFileSync(pair.certFile), key: readFileSync(pair.keyFile), servername: 'localhost', localAddress: o.localAddress ?? '127.0.0.1' };
}

/** An mTLS HTTP/2 session to the gRPC door; resolves once connected. */
export async function h2Session(port: number, certs: TestCerts, o: PeerOptions = {}): Promise<http2.ClientHttp2Session> {
  // A large session memory: the client's own queued request bytes must not make it reset the gateway's replies.
  const session = http2.connect(`https://127.0.0.1:${port}`, { ...tlsOptions(certs, o), maxSessionMemory: 1024 });
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  session.on('error', () => {});
  return session;
}

/** The 5-byte gRPC length prefix (uncompressed) for a message of `length` bytes. */
export function grpcPrefix(length: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length, 1);
  return b;
}

/** AllocationRequest{namespace} in protobuf. */
export function allocateMessage(namespace: string): Buffer {
  const ns = Buffer.from(namespace);
  return Buffer.concat([Buffer.from([0x0a, ns.length]), ns]);
}

export interface GrpcReply {
  /** grpc-status, or null when the stream closed without one (reset). */
  readonly status: number | null;
  readonly message: string;
  readonly rstCode: number;
  readonly ms: number;
  /** The response bytes as received (length-prefixed message), for a caller that reads the answer. */
  readonly data: Buffer;
}

/** Opens a unary gRPC stream; the caller writes (or withholds) the request bytes. */
export function grpcStream(session: http2.ClientHttp2Session, path: string, headers: Record<string, string> = {}): { stream: http2.ClientHttp2Stream; reply: Promise<GrpcReply> } {
  const t0 = Date.now();
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers }, { endStream: false });
  let status: number | null = null;
  let message = '';
  const take = (h: http2.IncomingHttpHeaders): void => {
    if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
    if (typeof h['grpc-message'] === 'string') message = decodeURIComponent(h['grpc-message']);
  };
  stream.on('response', take);
  stream.on('trailers', take);
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', () => {});
  const reply = new Promise<GrpcReply>((resolve) => stream.once('close', () => resolve({ status, message, rstCode: stream.rstCode ?? 0, ms: Date.now() - t0, data: Buffer.concat(chunks) })));
  return { stream, reply };
}

/** One complete unary Allocate over the session. */
export function grpcAllocate(session: http2.ClientHttp2Session, namespace = 'default', headers: Record<string, string> = {}): Promise<GrpcReply> {
  const { stream, reply } = grpcStream(session, '/allocation.AllocationService/Allocate', headers);
  const msg = allocateMessage(namespace);
  stream.end(Buffer.concat([grpcPrefix(msg.length), msg]));
  return reply;
}

export interface RestResult {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly ms: number;
}

/**
 * A REST Allocate whose body is written by `write` (all at once by default); resolves with the
 * reply or rejects when the connection ends without one.
 */
export function restAllocate(
  port: number,
  certs: TestCerts,
  o: PeerOptions & { body?: string; headers?: Record<string, string>; agent?: https.Agent | false; write?: (req: import('node:http').ClientRequest, body: string) => void } = {},
): Promise<RestResult> {
  const t0 = Date.now();
  const body = o.body ?? '{"namespace":"default"}';
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/gameserverallocation', method: 'POST', ...tlsOptions(certs, o), agent: o.agent ?? false, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...o.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers, ms: Date.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (o.write) o.write(req, body);
    else req.end(body);
  });
}

/** Writes a body one byte every `everyMs`, never finishing (the slow-body attack). */
export function trickle(everyMs: number): (req: import('node:http').ClientRequest, body: string) => void {
  return (req, body) => {
    let i = 0;
    req.flushHeaders();
    const timer = setInterval(() => {
      if (req.destroyed || i >= body.length - 1) return clearInterval(timer);
      req.write(body[i++]!);
    }, everyMs);
    req.on('close', () => clearInterval(timer));
  };
}
