// Server TLS material: certificate, key and the client-CA directory, checked at start and
// reloaded when the files change (Kubernetes Secret volumes swap them atomically via symlinks).
import { createHash, X509Certificate, createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { CertificateProvider, CaCertificateUpdateListener, IdentityCertificateUpdateListener } from '@grpc/grpc-js/build/src/certificate-provider.js';

/** PEM material the listeners need. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Concatenated client CAs. */
  readonly ca: Buffer;
}

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaDir: string;
}

/** TLS files that cannot be used; the message says which and why. */
export class TlsError extends Error {
  override readonly name = 'TlsError';
}

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** Reads and checks the TLS files: the key must match the certificate, the CA dir must hold a CA. */
export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const cert = read(files.certFile, 'certificate');
  const key = read(files.keyFile, 'private key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError(`certificate ${files.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) {
      throw new TlsError(`private key ${files.keyFile} does not match certificate ${files.certFile}`);
    }
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError(`private key ${files.keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  let names: string[];
  try {
    names = readdirSync(files.clientCaDir).filter((n) => n.endsWith('.crt') || n.endsWith('.pem')).sort();
  } catch (err) {
    throw new TlsError(`cannot read client CA directory ${files.clientCaDir}: ${(err as Error).message}`);
  }
  const cas: Buffer[] = [];
  for (const n of names) {
    const pem = readFileSync(join(files.clientCaDir, n));
    try {
      new X509Certificate(pem);
      cas.push(pem);
    } catch {
      // Unparsable files are skipped, as agones-allocator does; at least one must parse.
    }
  }
  if (cas.length === 0) throw new TlsError(`client CA directory ${files.clientCaDir} holds no PEM certificate (*.crt, *.pem)`);
  return { cert, key, ca: Buffer.concat(cas.flatMap((c) => [c, Buffer.from('\n')])) };
}

function digest(m: TlsMaterial): string {
  return createHash('sha256').update(m.cert).update(m.key).update(m.ca).digest('hex');
}

export type TlsListener = (m: TlsMaterial) => void;

/**
 * Polls the TLS files and announces new material. Polling (not fs.watch) survives Secret
 * volume symlink swaps and editors that replace files. A bad update keeps the old material.
 */
export class TlsWatcher implements CertificateProvider {
  #material: TlsMaterial;
  #digest: string;
  readonly #files: TlsFiles;
  readonly #listeners = new Set<TlsListener>();
  readonly #timer: NodeJS.Timeout;
  readonly #onError: (err: Error) => void;

  constructor(files: TlsFiles, opts: { pollMs: number; onError: (err: Error) => void; onReload?: () => void }) {
    this.#files = files;
    this.#material = loadTlsMaterial(files);
    this.#digest = digest(this.#material);
    this.#onError = opts.onError;
    this.#timer = setInterval(() => {
      if (this.reload()) opts.onReload?.();
    }, opts.pollMs);
    this.#timer.unref();
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** Re-reads the files now; true when the material changed. */
  reload(): boolean {
    let next: TlsMaterial;
    try {
      next = loadTlsMaterial(this.#files);
    } catch (err) {
      this.#onError(err as Error);
      return false;
    }
    const d = digest(next);
    if (d === this.#digest) return false;
    this.#material = next;
    this.#digest = d;
    for (const l of this.#listeners) l(next);
    return true;
  }

  onChange(l: TlsListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#listeners.clear();
  }

  // grpc-js CertificateProvider: one object serves both the identity and the client CAs.
  readonly #caListeners = new Map<CaCertificateUpdateListener, () => void>();
  readonly #idListeners = new Map<IdentityCertificateUpdateListener, () => void>();

  // First values are delivered on a later tick: grpc-js registers its own watcher only after
  // adding ours, and would miss a synchronous update (it then drops every connection).
  #deliveries: Promise<void>[] = [];

  #later(fn: () => void): void {
    this.#deliveries.push(new Promise((resolve) => setImmediate(() => resolve(fn()))));
  }

  /** Resolves once every listener added so far has received its first certificates. */
  async delivered(): Promise<void> {
    await Promise.all(this.#deliveries);
  }

  addCaCertificateListener(l: CaCertificateUpdateListener): void {
    this.#later(() => l({ caCertificate: this.#material.ca }));
    this.#caListeners.set(l, this.onChange((m) => l({ caCertificate: m.ca })));
  }

  removeCaCertificateListener(l: CaCertificateUpdateListener): void {
    this.#caListeners.get(l)?.();
    this.#caListeners.delete(l);
  }

  addIdentityCertificateListener(l: IdentityCertificateUpdateListener): void {
    this.#later(() => l({ certificate: this.#material.cert, privateKey: this.#material.key }));
    this.#idListeners.set(l, this.onChange((m) => l({ certificate: m.cert, privateKey: m.key })));
  }

  removeIdentityCertificateListener(l: IdentityCertificateUpdateListener): void {
    this.#idListeners.get(l)?.();
    this.#idListeners.delete(l);
  }
}

/** gRPC server credentials that require a client certificate and follow the watcher. */
export function grpcServerCredentials(watcher: TlsWatcher): grpc.ServerCredentials {
  return grpc.experimental.createCertificateProviderServerCredentials(watcher, watcher, true);
}

/** The verified client's identity: SAN URI, else SAN DNS, else subject CN. */
export function clientIdentity(cert: PeerCertificate | undefined | null): string | null {
  if (!cert || Object.keys(cert).length === 0) return null;
  // The kind is part of the identity: a subject CN may hold any text, so a bare "spiffe://a" from
  // a CN must not be taken for the URI SAN "spiffe://a" (nor a DNS SAN for a CN of the same text).
  const sans = (cert.subjectaltname ?? '').split(', ').filter(Boolean);
  const uri = sans.find((s) => s.startsWith('URI:'));
  if (uri) return `uri:${uri.slice(4)}`;
  const dns = sans.find((s) => s.startsWith('DNS:'));
  if (dns) return `dns:${dns.slice(4)}`;
  const cn = cert.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return name ? `cn:${name}` : null;
}

/** OpenSSL rejects a client EKU without clientAuth; this also rejects a certificate with no EKU at all. */
export function hasClientAuthUsage(cert: PeerCertificate | undefined | null): boolean {
  const eku = (cert as (PeerCertificate & { ext_key_usage?: string[] }) | null | undefined)?.ext_key_usage;
  return Array.isArray(eku) && eku.includes(CLIENT_AUTH_OID);
}
