// A connection does not outlive the trust that let it in. Its client certificate's expiry ends
// it (GOAWAY at notAfter), and so does the removal of its CA from the client-CA directory (checked
// whenever the TLS material changes), rather than only the connection's max age.
import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { MAX_TIMER_MS } from './call-context.ts';
import type { TlsWatcher } from './tls.ts';

/** The certificates of a PEM bundle (unparsable blocks skipped, as the listeners do). */
export function parseCaBundle(pem: Buffer): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const block of pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // skipped
    }
  }
  return out;
}

/** Whether the connection's client certificate chain still ends at one of `cas`. */
export function stillTrusted(socket: TLSSocket, cas: readonly X509Certificate[]): boolean {
  let cert = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    const x = new X509Certificate(cert.raw);
    for (const ca of cas) {
      if (ca.fingerprint256 === x.fingerprint256 || (x.checkIssued(ca) && x.verify(ca.publicKey))) return true;
    }
    cert = cert.issuerCertificate;
  }
  return false;
}

/** Milliseconds until the connection's client certificate expires (Infinity when unknown). */
export function msToExpiry(socket: TLSSocket): number {
  const notAfter = Date.parse(socket.getPeerCertificate().valid_to ?? '');
  return Number.isFinite(notAfter) ? Math.min(MAX_TIMER_MS, Math.max(0, notAfter - Date.now())) : Infinity;
}

/** gRPC door: GOAWAY (then the grace) for sessions whose certificate expires or whose CA is removed. */
export function enforceClientTrust(servers: readonly NetServer[], tls: TlsWatcher, graceMs: number): () => void {
  const sessions = new Set<http2.ServerHttp2Session>();
  const end = (session: http2.ServerHttp2Session): void => {
    if (session.closed || session.destroyed) return;
    session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    session.close();
    setTimeout(() => session.destroy(), graceMs).unref();
  };
  const onSession = (session: http2.ServerHttp2Session): void => {
    const ms = msToExpiry(session.socket as TLSSocket);
    const timer = Number.isFinite(ms) ? setTimeout(() => end(session), ms).unref() : undefined;
    sessions.add(session);
    session.once('close', () => {
      clearTimeout(timer);
      sessions.delete(session);
    });
  };
  for (const s of servers) s.on('session', onSession);
  return tls.onChange((m) => {
    const cas = parseCaBundle(m.ca);
    for (const session of sessions) if (!stillTrusted(session.socket as TLSSocket, cas)) end(session);
  });
}
