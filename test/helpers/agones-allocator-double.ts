// A test double of agones-allocator v1.56 as observed on the wire (shared notes, control-plane
// §6 and allocation-semantics §2/§6): gRPC and REST on one mTLS port (HTTP/2 +
// application/grpc → gRPC, everything else REST), `source: "local"`, RESOURCE_EXHAUSTED
// "there is no available GameServer to allocate", validation errors as the raw code 422 with
// agones' garbled message (REST: HTTP 500 with {"code":422}), and the keepalive policy of its
// native gRPC listener: pings more often than once a minute earn GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings" after two strikes. It implements no GatewayService (UNIMPLEMENTED).
// Written from observed behaviour; it contains no Agones code.
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RequestType, ResponseType } from '../../src/protocol/proto.ts';
import type { TestCerts } from './certs.ts';

/** A GameServer the double can hand out. */
export interface DoubleGameServer {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
  state?: 'Ready' | 'Allocated';
  readonly port?: number;
}

/** One Allocate the double received. */
export interface ReceivedCall {
  readonly door: 'grpc' | 'rest';
  readonly request: Record<string, any>;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly at: number;
}

/** normal; hang = accept the call, never answer; unavailable = UNAVAILABLE; invalid = answer every call like an invalid request (422). */
export type DoubleMode = 'normal' | 'hang' | 'unavailable' | 'invalid';

export interface AgonesAllocatorDouble {
  /** 127.0.0.1:port */
  readonly endpoint: string;
  readonly port: number;
  readonly calls: ReceivedCall[];
  readonly gameServers: DoubleGameServer[];
  /** GOAWAY frames sent for too many pings. */
  readonly goaways: number;
  mode: DoubleMode;
  close(): Promise<void>;
}

const NO_GS = 'there is no available GameServer to allocate';
const INVALID_PREFIX = 'GameServerAllocation.allocation.agones.dev "" is invalid: ';

function frame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt8(0, 0);
  b.writeUInt32BE(payload.length, 1);
  Buffer.from(payload).copy(b, 5);
  return b;
}

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
    if (Number(c.amount?.value ?? 0) < 0) out.push(`spec.counters[${k}].amount: Invalid value: ${c.amount.value}: must be greater than or equal to 0`);
  }
  for (const key of Object.keys(req.metadata?.labels ?? {})) {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key)) {
      out.push(`spec.metadata.labels: Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
    }
  }
  return out;
}

/** agones-allocator's gRPC keepalive enforcement: at most one ping a minute. */
export const AGONES_MIN_PING_INTERVAL_MS = 60_000;

/** Starts the double on 127.0.0.1 with the server certificate and client CA of `certs`. */
export async function startAgonesAllocatorDouble(
  t: { after(fn: () => Promise<void> | void): void },
  opts: { certs: TestCerts; gameServers?: DoubleGameServer[]; minPingIntervalMs?: number; mode?: DoubleMode },
): Promise<AgonesAllocatorDouble> {
  const { certs } = opts;
  const calls: ReceivedCall[] = [];
  const gameServers = opts.gameServers ?? [];
  const minPing = opts.minPingIntervalMs ?? AGONES_MIN_PING_INTERVAL_MS;
  let goaways = 0;
  const hanging = new Set<http2.Http2ServerResponse>();
  const state = { mode: opts.mode ?? ('normal' as DoubleMode) };

  const allocate = (req: Record<string, any>): { code: number; message: string; response?: Record<string, unknown> } => {
    const p = state.mode === 'invalid' ? ['spec.selectors[0].counters[rooms].minCount: Invalid value: -1: must be greater than or equal to 0'] : problems(req);
    if (p.length > 0) {
      const joined = p.length === 1 ? p[0] : `[${p.join(', ')}]`;
      return { code: 422, message: `${INVALID_PREFIX}${joined}%!(EXTRA *v1.Status=&Status{ListMeta:ListMeta{},Status:Failure,Code:422,Reason:Invalid})` };
    }
    const ns = req.namespace ?? '';
    const selectors: Record<string, any>[] = req.gameServerSelectors?.length ? req.gameServerSelectors : [...(req.preferredGameServerSelectors ?? []), req.requiredGameServerSelector ?? {}];
    for (const s of selectors) {
      const want = s.gameServerState === 'ALLOCATED' || s.gameServerState === 1 ? 'Allocated' : 'Ready';
      const gs = gameServers.find(
        (g) => (g.namespace ?? 'default') === ns && (g.state ?? 'Ready') === want && Object.entries<string>(s.matchLabels ?? {}).every(([k, v]) => g.labels?.[k] === v),
      );
      if (!gs) continue;
      gs.state = 'Allocated';
      const patch = req.metadata ?? req.metaPatch ?? {};
      return {
        code: 0,
        message: '',
        response: {
          gameServerName: gs.name,
          ports: [{ name: 'default', port: gs.port ?? 7777 }],
          address: '127.0.0.1',
          addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
          nodeName: 'node-1',
          source: 'local',
          metadata: {
            labels: { ...gs.labels, ...patch.labels },
            annotations: { ...patch.annotations, 'agones.dev/last-allocated': new Date().toISOString() },
          },
          counters: {},
          lists: {},
        },
      };
    }
    return { code: 8, message: NO_GS };
  };

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
          calls.push({ door: 'grpc', request, headers: { ...req.headers }, at: Date.now() });
          if (state.mode === 'hang') {
            hanging.add(res as http2.Http2ServerResponse);
            return;
          }
          const r = state.mode === 'unavailable' ? { code: 14, message: 'unavailable' } : allocate(request);
          res.writeHead(200, { 'content-type': 'application/grpc' });
          res.addTrailers({ 'grpc-status': String(r.code), 'grpc-message': encodeURIComponent(r.message) });
          if (r.response) res.end(frame(ResponseType.encode(ResponseType.fromObject(r.response)).finish()));
          else res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': '12', 'grpc-message': encodeURIComponent(`unknown service ${req.url.split('/')[1] ?? ''}`) });
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
      calls.push({ door: 'rest', request: json, headers: { ...req.headers }, at: Date.now() });
      const r = allocate(json);
      const httpStatus = r.code === 0 ? 200 : r.code === 8 ? 429 : 500;
      res.writeHead(httpStatus, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.code === 0 ? r.response : { code: r.code, message: r.message, details: [] }));
    });
  });
  // agones-allocator asks for the clientAuth EKU like any Go TLS server with ClientAuth required.
  (server as unknown as import('node:tls').Server).on('secureConnection', (socket: TLSSocket) => {
    const eku = (socket.getPeerCertificate() as { ext_key_usage?: string[] }).ext_key_usage;
    if (!eku?.includes('1.3.6.1.5.5.7.3.2')) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
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
    get mode() {
      return state.mode;
    },
    set mode(m: DoubleMode) {
      state.mode = m;
    },
    close,
  };
}
