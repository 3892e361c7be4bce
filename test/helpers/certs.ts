// Test PKI: the dev PKI from certs/gen-dev-certs.sh in a temp dir, plus certificates that must
// be refused (foreign CA, serverAuth-only, no EKU, expired, not yet valid).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

const SCRIPT = new URL('../../certs/gen-dev-certs.sh', import.meta.url).pathname;

/** A certificate and key pair on disk. */
export interface Pair {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCerts {
  readonly dir: string;
  readonly caFile: string;
  readonly caKeyFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCaDir: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly client: Pair;
  /** Signs a new leaf with this PKI's CA (or another CA dir). */
  leaf(name: string, opts?: LeafOptions): Pair;
}

export interface LeafOptions {
  /** e.g. 'clientAuth', 'serverAuth', or null for no EKU extension. */
  readonly eku?: string | null;
  readonly san?: string;
  /** Subject CN (default: the leaf's name); may hold characters a file name cannot. */
  readonly cn?: string;
  /** openssl ca date format YYYYMMDDHHMMSSZ. */
  readonly startDate?: string;
  readonly endDate?: string;
  /** Sign with this CA instead (e.g. a foreign one). */
  readonly ca?: { readonly certFile: string; readonly keyFile: string };
}

function openssl(args: string[], cwd?: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Generates a PKI under `dir` (no cleanup). */
export function makeCerts(dir: string, clientName = 'test-client'): TestCerts {
  execFileSync('bash', [SCRIPT, '--client-name', clientName, dir], { stdio: 'ignore' });
  const caFile = join(dir, 'ca/ca.crt');
  const caKeyFile = join(dir, 'ca/ca.key');
  const leaf = (name: string, opts: LeafOptions = {}): Pair => {
    const d = join(dir, 'extra', name);
    mkdirSync(join(d, 'db'), { recursive: true });
    writeFileSync(join(d, 'db/index.txt'), '');
    writeFileSync(join(d, 'db/serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
    const eku = opts.eku === undefined ? 'clientAuth' : opts.eku;
    writeFileSync(
      join(d, 'ca.cnf'),
      [
        '[ca]', 'default_ca=tca', '[tca]', `dir=${d}/db`, 'database=$dir/index.txt', 'serial=$dir/serial',
        `new_certs_dir=${d}/db`, 'default_md=sha256', 'policy=anything', 'unique_subject=no', 'copy_extensions=none', 'x509_extensions=leaf',
        '[anything]', 'commonName=supplied', '[leaf]', 'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature',
        ...(eku ? [`extendedKeyUsage=${eku}`] : []),
        `subjectAltName=${opts.san ?? `DNS:${name}`}`, '',
      ].join('\n'),
    );
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(d, 'tls.key')]);
    openssl(['req', '-new', '-key', join(d, 'tls.key'), '-subj', `/CN=${(opts.cn ?? name).replaceAll('/', '\\/')}`, '-out', join(d, 'tls.csr')]);
    const ca = opts.ca ?? { certFile: caFile, keyFile: caKeyFile };
    const dates = [
      ...(opts.startDate ? ['-startdate', opts.startDate] : []),
      ...(opts.endDate ? ['-enddate', opts.endDate] : ['-days', '30']),
    ];
    openssl(['ca', '-batch', '-notext', '-config', join(d, 'ca.cnf'), '-cert', ca.certFile, '-keyfile', ca.keyFile,
      ...dates, '-in', join(d, 'tls.csr'), '-out', join(d, 'tls.crt')]);
    return { certFile: join(d, 'tls.crt'), keyFile: join(d, 'tls.key') };
  };
  return {
    dir,
    caFile,
    caKeyFile,
    serverCertFile: join(dir, 'server/tls.crt'),
    serverKeyFile: join(dir, 'server/tls.key'),
    clientCaDir: join(dir, 'client-ca'),
    clientCertFile: join(dir, 'client/tls.crt'),
    clientKeyFile: join(dir, 'client/tls.key'),
    client: { certFile: join(dir, 'client/tls.crt'), keyFile: join(dir, 'client/tls.key') },
    leaf,
  };
}

/** A fresh PKI in a temp dir, removed after the test. */
export function devCerts(t: TestContext | { after(fn: () => void): void }, clientName?: string): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'gw-certs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return makeCerts(dir, clientName);
}
