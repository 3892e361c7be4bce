// A gRPC connection does not outlive its client certificate. grpc-js bounds a connection's age
// (grpc.max_connection_age_ms); a certificate that expires sooner than that ends it sooner:
// GOAWAY at the certificate's notAfter, calls in flight get the grace, then the connection is cut.
import http2 from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { MAX_TIMER_MS } from './call-context.ts';

export function closeAtCertificateExpiry(servers: readonly NetServer[], graceMs: number): void {
  const onSession = (session: http2.ServerHttp2Session): void => {
    const notAfter = Date.parse((session.socket as TLSSocket).getPeerCertificate?.().valid_to ?? '');
    if (!Number.isFinite(notAfter)) return;
    let cut: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      if (session.closed || session.destroyed) return;
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
      session.close();
      cut = setTimeout(() => session.destroy(), graceMs).unref();
    }, Math.min(MAX_TIMER_MS, Math.max(0, notAfter - Date.now()))).unref();
    session.once('close', () => {
      clearTimeout(timer);
      clearTimeout(cut);
    });
  };
  for (const s of servers) s.on('session', onSession);
}
