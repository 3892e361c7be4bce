// Shared set-up for the multi-cluster suites: policy documents, a secrets folder holding the
// front gateway's client certificate for the remotes, dead and black-holed endpoints.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { TestCerts } from '../helpers/certs.ts';

export const SECRET = 'remote-client';

/** A GameServerAllocationPolicy object. No endpoints = the local cluster. */
export function policy(name: string, o: { priority: number; weight?: number; endpoints?: string[]; cluster?: string; namespace?: string; labels?: Record<string, string>; policyNamespace?: string; secretName?: string }): object {
  return {
    apiVersion: 'multicluster.agones.dev/v1',
    kind: 'GameServerAllocationPolicy',
    metadata: { name, namespace: o.policyNamespace ?? 'default', ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      priority: o.priority,
      weight: o.weight ?? 100,
      connectionInfo: {
        clusterName: o.cluster ?? name,
        namespace: o.namespace ?? 'default',
        ...(o.endpoints ? { allocationEndpoints: o.endpoints, secretName: o.secretName ?? SECRET } : {}),
      },
    },
  };
}

/** A folder with policies.yaml and secrets/<SECRET>/{tls.crt,tls.key,ca.crt}. */
export function policyDir(t: { after(fn: () => void): void }, certs: TestCerts, policies: object[]): { policyFile: string; secretsDir: string; write(p: object[]): void } {
  const dir = mkdtempSync(join(tmpdir(), 'gw-policies-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = join(dir, 'secrets', SECRET);
  mkdirSync(secret, { recursive: true });
  copyFileSync(certs.clientCertFile, join(secret, 'tls.crt'));
  copyFileSync(certs.clientKeyFile, join(secret, 'tls.key'));
  copyFileSync(certs.caFile, join(secret, 'ca.crt'));
  const policyFile = join(dir, 'policies.yaml');
  const write = (p: object[]) => writeFileSync(policyFile, p.map((x) => stringify(x)).join('---\n'));
  write(policies);
  return { policyFile, secretsDir: join(dir, 'secrets'), write };
}

/** Adds secrets/<name>/{tls.crt,tls.key,ca.crt} beside the default one. */
export function addSecret(secretsDir: string, name: string, pair: { certFile: string; keyFile: string }, caFile: string): void {
  const dir = join(secretsDir, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(pair.certFile, join(dir, 'tls.crt'));
  copyFileSync(pair.keyFile, join(dir, 'tls.key'));
  copyFileSync(caFile, join(dir, 'ca.crt'));
}

/** A loopback port nothing listens on (connection refused). */
export async function deadEndpoint(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** Accepts TCP connections and never sends a byte. */
export async function blackHole(t: { after(fn: () => Promise<void> | void): void }): Promise<string> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return `127.0.0.1:${(srv.address() as { port: number }).port}`;
}

/** The attempts listed in an error's ErrorInfo. */
export function attemptsOf(err: { errorInfo: { metadata: Readonly<Record<string, string>> } | null }): { target: string; endpoint: string; outcome: string; code: string; message: string }[] {
  return JSON.parse(err.errorInfo?.metadata.attempts ?? '[]');
}
