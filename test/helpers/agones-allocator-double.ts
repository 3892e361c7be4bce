// A test double of agones-allocator v1.56 as observed on the wire (shared notes, control-plane
// §6 and allocation-semantics §2–§4): gRPC and REST on one mTLS port (HTTP/2 +
// application/grpc → gRPC, everything else REST), `source: "local"`, RESOURCE_EXHAUSTED
// "there is no available GameServer to allocate", validation errors as the raw code 422 with
// agones' garbled message (REST: HTTP 500 with {"code":422}), and the keepalive policy of its
// native gRPC listener: pings more often than once a minute earn GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings" after two strikes. It implements no GatewayService (UNIMPLEMENTED).
//
// Allocation is batched as agones does it: one loop serves queued requests in order and, whenever
// the queue is empty, sleeps the batch window (ALLOCATION_BATCH_WAIT_TIME, 500 ms by default),
// so a lone request waits up to a window. The caller's deadline is ignored: a request whose
// caller has gone is still allocated (its answer goes nowhere). Selection follows agones:
// matchLabels, state, counters and lists filters, Packed (Allocated first, busier node first,
// node with more Ready, priorities, name) or Distributed (priorities then name); metadata merged,
// `agones.dev/last-allocated` stamped, counter/list actions clamped. No idempotency: the
// `idempotency-key` header means nothing to it.
// Written from observed behaviour; it contains no Agones code.
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { RequestType, ResponseType } from '../../src/protocol/proto.ts';
import type { TestCerts } from './certs.ts';

/** A GameServer the double can hand out; mutated in place as agones would update it. */
export interface DoubleGameServer {
  readonly name: string;
  readonly namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  state?: 'Ready' | 'Allocated';
  readonly port?: number;
  /** Default "node-1". */
  readonly nodeName?: string;
  counters?: Record<string, { count: number; capacity: number }>;
  lists?: Record<string, { values: string[]; capacity: number }>;
}

/** One Allocate the double received. */
export interface ReceivedCall {
  readonly door: 'grpc' | 'rest';
  readonly request: Record<string, any>;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly at: number;
  /** Set when the batch loop served it: the GameServer it allocated, or null. */
  allocated?: string | null;
  /** The caller had gone (deadline, cancel, reset) when the batch loop served it. */
  callerGone?: boolean;
}

/**
 * - normal: as agones-allocator.
 * - hang: accept the call, never answer, allocate nothing.
 * - allocate-then-hang: allocate as normal, never answer.
 * - allocate-then-reset: allocate as normal, then reset the stream (RST_STREAM) instead of answering.
 * - unavailable: answer UNAVAILABLE without allocating.
 * - invalid: answer every call like an invalid request (422).
 * - refuse-tls: the TLS handshake fails: client certificates are checked against a CA that signed none of them.
 */
export type DoubleMode = 'normal' | 'hang' | 'allocate-then-hang' | 'allocate-then-reset' | 'unavailable' | 'invalid' | 'refuse-tls';

export interface AgonesAllocatorDouble {
  /** 127.0.0.1:port */
  readonly endpoint: string;
  readonly port: number;
  readonly calls: ReceivedCall[];
  readonly gameServers: DoubleGameServer[];
  /** GOAWAY frames sent for too many pings. */
  readonly goaways: number;
  /** TLS connections that completed a handshake. */
  readonly handshakes: number;
  mode: DoubleMode;
  /** Resolves once every queued request has been served by the batch loop. */
  drained(): Promise<void>;
  close(): Promise<void>;
}

export interface DoubleOptions {
  readonly certs: TestCerts;
  readonly gameServers?: DoubleGameServer[];
  readonly minPingIntervalMs?: number;
  readonly mode?: DoubleMode;
  /** ALLOCATION_BATCH_WAIT_TIME; default 500 ms as agones ships. */
  readonly batchWaitMs?: number;
}

const NO_GS = 'there is no available GameServer to allocate';
const INVALID_PREFIX = 'GameServerAllocation.allocation.agones.dev "" is invalid: ';
const LAST_ALLOCATED = 'agones.dev/last-allocated';

/** grpc-message percent-encoding: only '%' and bytes outside printable ASCII. */
const grpcMessage = (s: string): string => s.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));

function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt8(0, 0);
  b.writeUInt32BE(payload.length, 1);
  Buffer.from(payload).copy(b, 5);
  return b;
}

/** A wrapper type ({value}) as decoded from gRPC, or the bare value REST JSON carries. */
const unwrap = (v: any): any => (v !== null && typeof v === 'object' && 'value' in v ? v.value : v);
const num = (v: any): number => Number(unwrap(v) ?? 0);
const own = <T>(m: Record<string, T> | undefined, k: string): T | undefined => (m !== undefined && Object.hasOwn(m, k) ? m[k] : undefined);

/** agones validation, the subset our tests exercise: negative counter/list bounds and amounts, bad label keys. */
function problems(req: Record<string, any>): string[] {
  const out: string[] = [];
  const sels: Record<string, any>[] = req.gameServerSelectors ?? [];
  sels.forEach((s, i) => {
    for (const [k, c] of Object.entries<Record<string, string>>(s.counters ?? {})) {
      for (const f of ['minCount', 'maxCount', 'minAvailable', 'maxAvailable']) {
        if (Number(c[f] ?? 0) < 0) out.push(`spec.selectors[${i}].counters[${k}].${f}: Invalid value: ${c[f]}: must be greater than or equal to 0`);
      }
    }
  });
  for (const [k, c] of Object.entries<Record<string, any>>(req.counters ?? {})) {
    if (num(c.amount) < 0) out.push(`spec.counters[${k}].amount: Invalid value: ${num(c.amount)}: must be greater than or equal to 0`);
  }
  for (const key of Object.keys(req.metadata?.labels ?? {})) {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key)) {
      out.push(`spec.metadata.labels: Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
    }
  }
  return out;
}

function available(capacity: number, used: number): number {
  return capacity - used;
}

function inRange(v: number, min: number, max: number): boolean {
  return v >= min && (max === 0 || v <= max);
}

/** Whether a GameServer matches one selector (labels, state, counters, lists). */
function matches(gs: DoubleGameServer, s: Record<string, any>): boolean {
  const want = s.gameServerState === 'ALLOCATED' || s.gameServerState === 1 ? 'Allocated' : 'Ready';
  if ((gs.state ?? 'Ready') !== want) return false;
  for (const [k, v] of Object.entries<string>(s.matchLabels ?? {})) if (own(gs.labels, k) !== v) return false;
  for (const [k, c] of Object.entries<Record<string, any>>(s.counters ?? {})) {
    const g = own(gs.counters, k);
    if (!g) return false;
    if (!inRange(available(g.capacity, g.count), num(c.minAvailable), num(c.maxAvailable))) return false;
    if (!inRange(g.count, num(c.minCount), num(c.maxCount))) return false;
  }
  for (const [k, l] of Object.entries<Record<string, any>>(s.lists ?? {})) {
    const g = own(gs.lists, k);
    if (!g) return false;
    if (!inRange(available(g.capacity, g.values.length), num(l.minAvailable), num(l.maxAvailable))) return false;
    if (l.containsValue && !g.values.includes(l.containsValue)) return false;
  }
  return true;
}

function room(gs: DoubleGameServer, p: Record<string, any>): number | undefined {
  if (p.type === 'List' || p.type === 1) {
    const l = own(gs.lists, p.key ?? '');
    return l ? l.capacity - l.values.length : undefined;
  }
  const c = own(gs.counters, p.key ?? '');
  return c ? c.capacity - c.count : undefined;
}

/** Sort key of a GameServer under the request's priorities: per priority, (has the key ? 0 : 1, room in scan order). */
function priorityKey(gs: DoubleGameServer, priorities: Record<string, any>[]): number[] {
  return priorities.flatMap((p) => {
    const r = room(gs, p);
    const descending = p.order === 'Descending' || p.order === 1;
    return r === undefined ? [1, 0] : [0, descending ? -r : r];
  });
}

function byPriorities(a: DoubleGameServer, b: DoubleGameServer, priorities: Record<string, any>[]): number {
  const ka = priorityKey(a, priorities);
  const kb = priorityKey(b, priorities);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return 0;
}

/** The candidate list in agones' scan order for this request. */
function sorted(pool: DoubleGameServer[], req: Record<string, any>): DoubleGameServer[] {
  const priorities: Record<string, any>[] = req.priorities ?? [];
  const name = (a: DoubleGameServer, b: DoubleGameServer) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  if (req.scheduling === 'Distributed' || req.scheduling === 1) return [...pool].sort((a, b) => byPriorities(a, b, priorities) || name(a, b));
  const nodes = new Map<string, { allocated: number; ready: number }>();
  for (const g of pool) {
    const n = nodes.get(g.nodeName ?? 'node-1') ?? { allocated: 0, ready: 0 };
    if ((g.state ?? 'Ready') === 'Allocated') n.allocated++;
    else n.ready++;
    nodes.set(g.nodeName ?? 'node-1', n);
  }
  return [...pool].sort((a, b) => {
    const sa = a.state ?? 'Ready';
    const sb = b.state ?? 'Ready';
    if (sa !== sb) return sa === 'Allocated' ? -1 : 1;
    const na = nodes.get(a.nodeName ?? 'node-1')!;
    const nb = nodes.get(b.nodeName ?? 'node-1')!;
    if (na !== nb) {
      if (na.allocated !== nb.allocated) return nb.allocated - na.allocated;
      if (na.ready !== nb.ready) return nb.ready - na.ready;
    }
    return byPriorities(a, b, priorities) || name(a, b);
  });
}

/** Counter and list actions, clamped as agones does; a failing action is skipped. */
function applyActions(gs: DoubleGameServer, req: Record<string, any>): void {
  for (const [k, a] of Object.entries<Record<string, any>>(req.counters ?? {})) {
    const c = own(gs.counters, k);
    if (!c) continue;
    if (unwrap(a.capacity) !== undefined) {
      c.capacity = num(a.capacity);
      c.count = Math.min(c.count, c.capacity);
    }
    const action = unwrap(a.action);
    if (action === 'Increment') c.count = Math.min(c.capacity, c.count + num(a.amount));
    else if (action === 'Decrement') c.count = Math.max(0, c.count - num(a.amount));
  }
  for (const [k, a] of Object.entries<Record<string, any>>(req.lists ?? {})) {
    const l = own(gs.lists, k);
    if (!l) continue;
    if (unwrap(a.capacity) !== undefined) {
      if (num(a.capacity) > 1000) continue;
      l.capacity = num(a.capacity);
      l.values = l.values.slice(0, l.capacity);
    }
    for (const v of a.addValues ?? []) if (!l.values.includes(v)) l.values.push(v);
    l.values = l.values.slice(0, l.capacity);
    l.values = l.values.filter((v) => !(a.deleteValues ?? []).includes(v));
  }
}

interface Answer {
  code: number;
  message: string;
  response?: Record<string, unknown>;
}

interface Queued {
  readonly call: ReceivedCall;
  /** Writes the answer, unless the caller is gone; returns false when it was. */
  readonly answer: (a: Answer) => boolean;
}

/** agones-allocator's gRPC keepalive enforcement: at most one ping a minute. */
export const AGONES_MIN_PING_INTERVAL_MS = 60_000;

/** Starts the double on 127.0.0.1 with the server certificate and client CA of `certs`. */
export async function startAgonesAllocatorDouble(t: { after(fn: () => Promise<void> | void): void }, opts: DoubleOptions): Promise<AgonesAllocatorDouble> {
  const { certs } = opts;
  const calls: ReceivedCall[] = [];
  const gameServers = opts.gameServers ?? [];
  const minPing = opts.minPingIntervalMs ?? AGONES_MIN_PING_INTERVAL_MS;
  const batchWaitMs = opts.batchWaitMs ?? 500;
  let goaways = 0;
  let handshakes = 0;
  const hanging = new Set<http2.Http2ServerResponse>();
  const state = { mode: opts.mode ?? ('normal' as DoubleMode) };
  const queue: Queued[] = [];
  let waiters: (() => void)[] = [];
  let closed = false;

  const allocate = (req: Record<string, any>): Answer & { gs?: DoubleGameServer } => {
    const p = state.mode === 'invalid' ? ['spec.selectors[0].counters[rooms].minCount: Invalid value: -1: must be greater than or equal to 0'] : problems(req);
    if (p.length > 0) {
      const joined = p.length === 1 ? p[0] : `[${p.join(', ')}]`;
      return { code: 422, message: `${INVALID_PREFIX}${joined}%!(EXTRA *v1.Status=&Status{ListMeta:ListMeta{},Status:Failure,Code:422,Reason:Invalid})` };
    }
    const ns = req.namespace ?? '';
    const selectors: Record<string, any>[] = req.gameServerSelectors?.length ? req.gameServerSelectors : [...(req.preferredGameServerSelectors ?? []), req.requiredGameServerSelector ?? {}];
    const list = sorted(gameServers.filter((g) => (g.namespace ?? 'default') === ns), req);
    // The lowest-index selector that matches anything wins, with the first candidate in scan order.
    for (const s of selectors) {
      const gs = list.find((g) => matches(g, s));
      if (!gs) continue;
      const patch = req.metadata ?? req.metaPatch ?? {};
      gs.labels = { ...gs.labels, ...patch.labels };
      gs.annotations = { ...gs.annotations, ...patch.annotations, [LAST_ALLOCATED]: new Date().toISOString() };
      gs.state = 'Allocated';
      applyActions(gs, req);
      const counters = Object.fromEntries(Object.entries(gs.counters ?? {}).map(([k, c]) => [k, { count: { value: String(c.count) }, capacity: { value: String(c.capacity) } }]));
      const lists = Object.fromEntries(Object.entries(gs.lists ?? {}).map(([k, l]) => [k, { values: [...l.values], capacity: { value: String(l.capacity) } }]));
      return {
        gs,
        code: 0,
        message: '',
        response: {
          gameServerName: gs.name,
          ports: [{ name: 'default', port: gs.port ?? 7777 }],
          address: '127.0.0.1',
          addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
          nodeName: gs.nodeName ?? 'node-1',
          source: 'local',
          metadata: { labels: { ...gs.labels }, annotations: { ...gs.annotations } },
          counters,
          lists,
        },
      };
    }
    return { code: 8, message: NO_GS };
  };

  // The batch loop: serve everything queued; when the queue is empty, sleep one window.
  let timer: NodeJS.Timeout | null = null;
  const loop = (): void => {
    timer = null;
    if (closed) return;
    if (queue.length === 0) {
      for (const w of waiters) w();
      waiters = [];
      timer = setTimeout(loop, batchWaitMs);
      return;
    }
    while (queue.length > 0) {
      const q = queue.shift()!;
      const r = state.mode === 'unavailable' ? { code: 14, message: 'unavailable' } : state.mode === 'hang' ? null : allocate(q.call.request);
      q.call.allocated = r && 'gs' in r && r.gs ? r.gs.name : null;
      if (r) q.call.callerGone = !q.answer(r);
    }
    setImmediate(loop);
  };
  timer = setTimeout(loop, batchWaitMs);

  const server = http2.createSecureServer({
    cert: readFileSync(certs.serverCertFile),
    key: readFileSync(certs.serverKeyFile),
    ca: readFileSync(certs.caFile),
    requestCert: true,
    rejectUnauthorized: true,
    allowHTTP1: true,
  });
  server.on('session', (session) => {
    let last = 0;
    let strikes = 0;
    session.on('ping', () => {
      const now = Date.now();
      if (last !== 0 && now - last < minPing) strikes++;
      last = now;
      // Go's transport allows two early pings, then says goodbye.
      if (strikes > 2 && !session.closed) {
        goaways++;
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from('too_many_pings'));
        session.close();
      }
    });
  });
  const gone = (res: http2.Http2ServerResponse): boolean => res.stream === null || res.stream.destroyed || res.stream.closed;
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const grpc = req.httpVersionMajor === 2 && String(req.headers['content-type'] ?? '').includes('application/grpc');
      if (grpc) {
        if (req.url === '/allocation.AllocationService/Allocate') {
          const msg = RequestType.decode(body.subarray(5));
          const request = RequestType.toObject(msg, { longs: String, enums: String }) as Record<string, any>;
          const call: ReceivedCall = { door: 'grpc', request, headers: { ...req.headers }, at: Date.now() };
          calls.push(call);
          queue.push({
            call,
            answer: (r) => {
              if (gone(res)) return false;
              if (r.code === 0 && state.mode === 'allocate-then-hang') {
                hanging.add(res);
                return true;
              }
              if (r.code === 0 && state.mode === 'allocate-then-reset') {
                res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
                return true;
              }
              res.writeHead(200, { 'content-type': 'application/grpc' });
              res.addTrailers({ 'grpc-status': String(r.code), 'grpc-message': grpcMessage(r.message) });
              if (r.response) res.end(frame(ResponseType.encode(ResponseType.fromObject(r.response)).finish()));
              else res.end();
              return true;
            },
          });
          if (state.mode === 'hang') hanging.add(res);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': '12', 'grpc-message': grpcMessage(`unknown service ${req.url.split('/')[1] ?? ''}`) });
        res.end();
        return;
      }
      // REST (grpc-gateway)
      if (req.url !== '/gameserverallocation') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
        return;
      }
      let json: Record<string, any>;
      try {
        json = body.length === 0 ? {} : (JSON.parse(body.toString()) as Record<string, any>);
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 3, message: (err as Error).message, details: [] }));
        return;
      }
      const call: ReceivedCall = { door: 'rest', request: json, headers: { ...req.headers }, at: Date.now() };
      calls.push(call);
      queue.push({
        call,
        answer: (r) => {
          if (res.destroyed || res.writableEnded || req.socket?.destroyed) return false;
          const httpStatus = r.code === 0 ? 200 : r.code === 8 ? 429 : r.code === 14 ? 503 : 500;
          res.writeHead(httpStatus, { 'content-type': 'application/json' });
          res.end(JSON.stringify(r.code === 0 ? r.response : { code: r.code, message: r.message, details: [] }));
          return true;
        },
      });
    });
  });
  const tlsServer = server as unknown as TlsServer;
  // agones-allocator asks for the clientAuth EKU like any Go TLS server with ClientAuth required.
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    const eku = (socket.getPeerCertificate() as { ext_key_usage?: string[] }).ext_key_usage;
    if (!eku?.includes('1.3.6.1.5.5.7.3.2')) socket.destroy();
    else handshakes++;
  });
  const contextFor = (mode: DoubleMode) => ({
    cert: readFileSync(certs.serverCertFile),
    key: readFileSync(certs.serverKeyFile),
    // refuse-tls: trust only the server's own leaf (not a CA), so every client certificate fails verification.
    ca: readFileSync(mode === 'refuse-tls' ? certs.serverCertFile : certs.caFile),
  });
  if (state.mode === 'refuse-tls') tlsServer.setSecureContext(contextFor('refuse-tls'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    for (const w of waiters) w();
    for (const r of hanging) r.stream?.close();
    hanging.clear();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // sessions are closed gracefully by close(); do not wait for idle clients
      setTimeout(resolve, 500).unref();
    });
  };
  t.after(close);
  return {
    endpoint: `127.0.0.1:${port}`,
    port,
    calls,
    gameServers,
    get goaways() {
      return goaways;
    },
    get handshakes() {
      return handshakes;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: DoubleMode) {
      if ((m === 'refuse-tls') !== (state.mode === 'refuse-tls')) tlsServer.setSecureContext(contextFor(m));
      state.mode = m;
    },
    drained: () => (queue.length === 0 && timer !== null ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
    close,
  };
}
