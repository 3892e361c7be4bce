// Connection-level limits both doors share: how many connections a listener holds at once and
// how long a connection may take to complete its TLS handshake. Node's default handshake
// timeout is 120 s, so silent (half-open) sockets could pile up for two minutes each.
import type { Server as NetServer } from 'node:net';

export interface SocketLimits {
  /** Connections a listener keeps open at once; more are closed at accept. */
  readonly maxConnections: number;
  /** A connection that has not finished its TLS handshake by then is closed. */
  readonly handshakeTimeoutMs: number;
}

/** Applies the limits to a TLS server (https, http2 secure server). */
export function applySocketLimits(server: NetServer, limits: SocketLimits): void {
  server.maxConnections = limits.maxConnections;
  // tls.Server reads its handshake timeout from this field on every new connection; it is only
  // settable through the constructor's options, which grpc-js does not expose.
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'handshake-timeout');
  if (key) (server as unknown as Record<symbol, number>)[key] = limits.handshakeTimeoutMs;
}

/** The TLS servers behind a grpc-js Server (internal field; empty if grpc-js changes it). */
export function grpcJsServers(server: object): NetServer[] {
  const map = (server as { http2Servers?: Map<NetServer, unknown> }).http2Servers;
  return map instanceof Map ? [...map.keys()] : [];
}
