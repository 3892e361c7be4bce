// Connection-level limits both doors share: how many connections a listener holds at once, how
// many of them may still be in their TLS handshake (overall and per peer address), and how long
// a handshake may take. Node's default handshake timeout is 120 s, so silent (half-open) sockets
// could pile up for two minutes each; and a cap that counts every connection alike lets one
// address that never finishes TLS hold every slot of a door.
import type { Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface SocketLimits {
  /** Connections a listener keeps open at once; more are closed at accept. */
  readonly maxConnections: number;
  /** A connection that has not finished its TLS handshake by then is closed. */
  readonly handshakeTimeoutMs: number;
  /** Connections of a listener still in their TLS handshake; more are closed at accept. */
  readonly maxHandshakes: number;
  /** Of those, from one peer (IPv4 address, IPv6 /64); more are closed at accept. */
  readonly maxHandshakesPerPeer: number;
  /** Established connections of one client identity; more are closed once their handshake names it. Default: no bound. */
  readonly maxConnectionsPerClient?: number;
}

export const DEFAULT_SOCKET_LIMITS: SocketLimits = { maxConnections: 1024, handshakeTimeoutMs: 10_000, maxHandshakes: 256, maxHandshakesPerPeer: 32 };

/** Connections in their handshake, and those a listener closed because of the caps. */
export interface HandshakeCounts {
  readonly inProgress: number;
  readonly refused: number;
}

/**
 * The unit a peer is counted in: an IPv4 address, or the /64 prefix of an IPv6 address (one
 * host usually holds a whole /64, so counting single IPv6 addresses would bound nothing).
 */
export function peerKey(address: string | undefined): string {
  if (!address) return '?';
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  const [head = '', tail] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Applies the limits to a TLS server (https, http2 secure server); `identityOf` names a verified
 * connection's client. Returns live handshake counts.
 */
export function applySocketLimits(server: NetServer, limits: SocketLimits, identityOf: (s: TLSSocket) => string = () => ''): () => HandshakeCounts {
  server.maxConnections = limits.maxConnections;
  // tls.Server reads its handshake timeout from this field on every new connection; it is only
  // settable through the constructor's options, which grpc-js does not expose.
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'handshake-timeout');
  if (key) (server as unknown as Record<symbol, number>)[key] = limits.handshakeTimeoutMs;

  const perPeer = new Map<string, number>();
  // Keyed by the TCP 4-tuple's remote half: the TLS socket that completes the handshake is a new
  // object wrapping the accepted one, and reports the same remote address and port.
  const handshaking = new Map<string, () => void>();
  let inProgress = 0;
  let refused = 0;
  // Runs before the TLS layer wraps the socket: a refused connection costs no handshake.
  server.prependListener('connection', (raw: Socket) => {
    const peer = peerKey(raw.remoteAddress);
    const fromPeer = perPeer.get(peer) ?? 0;
    if (inProgress >= limits.maxHandshakes || fromPeer >= limits.maxHandshakesPerPeer) {
      refused++;
      raw.destroy();
      return;
    }
    inProgress++;
    perPeer.set(peer, fromPeer + 1);
    const id = `${raw.remoteAddress}|${raw.remotePort}`;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inProgress--;
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left > 0) perPeer.set(peer, left);
      else perPeer.delete(peer);
      if (handshaking.get(id) === finish) handshaking.delete(id);
    };
    handshaking.set(id, finish);
    raw.once('close', finish);
  });
  // One identity's connections, however many addresses it comes from, leave the door's other slots to others.
  const perClient = new Map<string, number>();
  const maxPerClient = limits.maxConnectionsPerClient ?? Infinity;
  server.on('secureConnection', (s: TLSSocket) => {
    handshaking.get(`${s.remoteAddress}|${s.remotePort}`)?.();
    if (maxPerClient === Infinity) return;
    const identity = identityOf(s);
    const held = perClient.get(identity) ?? 0;
    if (held >= maxPerClient) {
      refused++;
      s.destroy();
      return;
    }
    perClient.set(identity, held + 1);
    s.once('close', () => {
      const left = (perClient.get(identity) ?? 1) - 1;
      if (left > 0) perClient.set(identity, left);
      else perClient.delete(identity);
    });
  });
  return () => ({ inProgress, refused });
}

/** The TLS servers behind a grpc-js Server (internal field; empty if grpc-js changes it). */
export function grpcJsServers(server: object): NetServer[] {
  const map = (server as { http2Servers?: Map<NetServer, unknown> }).http2Servers;
  return map instanceof Map ? [...map.keys()] : [];
}
