// A validating admission webhook on loopback that the real kube-apiserver calls: it records the
// objects it reviews and holds the ones a test picks until released. Tests use it to make a write
// stall at the API server (as a slow webhook or a stalled etcd does in a real cluster) at a moment
// they choose, without touching the gateway.
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { ControlPlane, Json } from '../cluster/control-plane.ts';
import type { TestCerts } from './certs.ts';

export interface AdmissionGate {
  /** Names of the objects reviewed, in order. */
  readonly seen: string[];
  /** Which reviews to hold; null lets every review through at once. */
  hold: ((name: string) => boolean) | null;
  /** Holds nothing more and lets the held reviews through. */
  open(): void;
}

export interface AdmissionGateOptions {
  /** Name of the ValidatingWebhookConfiguration (cluster-scoped: one per test file). */
  readonly name: string;
  /** The only namespace whose writes are reviewed. */
  readonly namespace: string;
  readonly rules: readonly Json[];
  /**
   * Makes a write the webhook reviews and returns the reviewed object's name: the API server picks a
   * new configuration up asynchronously, so the gate is ready once such a write reaches it.
   */
  readonly probe: (attempt: number) => Promise<string>;
}

export async function startAdmissionGate(
  cp: ControlPlane,
  certs: TestCerts,
  owner: { after(fn: () => Promise<void> | void): void },
  o: AdmissionGateOptions,
): Promise<AdmissionGate> {
  const pair = certs.leaf(`${o.name}-webhook`, { eku: 'serverAuth', san: 'IP:127.0.0.1' });
  const held: (() => void)[] = [];
  const gate: AdmissionGate = {
    seen: [],
    hold: null,
    open() {
      gate.hold = null;
      for (const release of held.splice(0)) release();
    },
  };
  const server = https.createServer({ cert: readFileSync(pair.certFile), key: readFileSync(pair.keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as Json;
      const name = String(review.request?.name);
      gate.seen.push(name);
      const answer = (): void => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request?.uid, allowed: true },
        }));
      };
      if (gate.hold?.(name)) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  owner.after(async () => {
    gate.open();
    await cp.request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${o.name}`);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as { port: number }).port;
  const r = await cp.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: o.name },
    webhooks: [{
      name: `${o.name}.gateway.test`,
      clientConfig: { url: `https://127.0.0.1:${port}/validate`, caBundle: readFileSync(certs.caFile).toString('base64') },
      rules: o.rules,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': o.namespace } },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      timeoutSeconds: 30,
      failurePolicy: 'Fail',
    }],
  });
  assert.equal(r.status, 201, r.text);
  const deadline = Date.now() + 20_000;
  for (let attempt = 1; ; attempt++) {
    const probed = await o.probe(attempt);
    if (gate.seen.includes(probed)) return gate;
    if (Date.now() > deadline) throw new Error(`the API server did not call the ${o.name} webhook within 20 s`);
    await new Promise((res) => setTimeout(res, 200));
  }
}
