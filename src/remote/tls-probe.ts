// Why a channel could not connect, when TLS is the reason. grpc-js reports every failed
// connection as "Failed to connect", so after one a single handshake is made with the same
// material to learn whether the remote refused our client certificate or we refused its server
// certificate. Stable words only: OpenSSL's text goes to the log, never to callers.
import tls from 'node:tls';
import { isIP } from 'node:net';

/** What the probe learned; null when TLS was not the problem (or it could not tell). */
export type TlsProblem = 'client certificate refused' | 'server certificate not trusted';

export interface ProbeMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/** One handshake to `endpoint`; resolves within timeoutMs. `detail` receives OpenSSL's message. */
export function probeTls(endpoint: string, material: ProbeMaterial | null, serverCa: string, timeoutMs: number, detail?: (message: string) => void): Promise<TlsProblem | null> {
  const host = endpoint.startsWith('[') ? endpoint.slice(1, endpoint.indexOf(']')) : endpoint.slice(0, endpoint.lastIndexOf(':'));
  const port = Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
  const roots = [serverCa, material?.ca.toString('utf8') ?? ''].filter((s) => s.trim() !== '').join('\n');
  return new Promise((resolve) => {
    let settled = false;
    const done = (p: TlsProblem | null, message = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (message !== '') detail?.(message);
      resolve(p);
    };
    const socket = tls.connect({
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : { checkServerIdentity: (_n: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(host, cert) }),
      ...(roots !== '' ? { ca: roots } : {}),
      ...(material ? { cert: material.cert, key: material.key } : {}),
      ALPNProtocols: ['h2'],
    });
    const timer = setTimeout(() => done(null), timeoutMs);
    timer.unref();
    let handshaken = false;
    socket.on('secureConnect', () => {
      handshaken = true;
      // TLS 1.3: the server checks our certificate after our side has finished; its verdict
      // (an alert, or a closed connection) arrives just after.
      setTimeout(() => done(null), Math.min(200, timeoutMs)).unref();
    });
    socket.on('error', (err: Error & { code?: string }) => {
      if (!handshaken && /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(err.code ?? '') && !/alert/i.test(err.message)) return done(null, err.message);
      if (handshaken || /alert|certificate required|bad certificate|unknown ca/i.test(err.message)) return done('client certificate refused', err.message);
      return done('server certificate not trusted', err.message);
    });
    socket.on('close', () => done(handshaken ? 'client certificate refused' : null));
  });
}
