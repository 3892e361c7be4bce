// Builds and checks a ClientSecret from its three PEM parts, whatever stores them.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { SecretProblem, type ClientSecret } from './policy-source.ts';

/**
 * Checks tls.crt/tls.key (required, must match) and ca.crt (optional PEM). `where` names the
 * secret in messages, e.g. "secret ns/allocator-b-client".
 */
export function clientSecretOf(where: string, cert: Buffer | undefined, key: Buffer | undefined, ca: Buffer | undefined): ClientSecret {
  if (!cert || cert.length === 0 || !key || key.length === 0) {
    const missing = [!cert || cert.length === 0 ? 'tls.crt' : '', !key || key.length === 0 ? 'tls.key' : ''].filter(Boolean).join(' and ');
    throw new SecretProblem(`${where}: missing client certificate key pair (${missing})`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new SecretProblem(`${where}: tls.crt is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new SecretProblem(`${where}: tls.key does not match tls.crt`);
  } catch (err) {
    if (err instanceof SecretProblem) throw err;
    throw new SecretProblem(`${where}: tls.key is not a PEM private key: ${(err as Error).message}`);
  }
  if (ca && ca.length > 0) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new SecretProblem(`${where}: ca.crt is not a PEM certificate: ${(err as Error).message}`);
    }
  }
  const caBuf = ca ?? Buffer.alloc(0);
  const version = createHash('sha256').update(cert).update('\0').update(key).update('\0').update(caBuf).digest('hex').slice(0, 16);
  return { cert, key, ca: caBuf, version };
}
