// deploy/helm/allocator-gateway: `helm template` with the default values renders the same objects
// as the kustomize manifests in deploy/ (so their checks — RBAC least privilege, probes, ports,
// Pod Security — hold for the chart too); each value (replicas, certificates, config,
// authorization, RBAC scope, resources) lands where it should; and the rendered objects are
// accepted by a real API server (server-side apply, dry run, strict fields, no warnings).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { startControlPlane, type ControlPlane, type Json } from '../cluster/control-plane.ts';
import { loadManifests, resourcePath, serverSideApply, skipReason, type Manifest } from '../kubernetes/fixtures.ts';

const run = promisify(execFile);
const CHART = fileURLToPath(new URL('../../deploy/helm/allocator-gateway', import.meta.url));
const TOOLS = fileURLToPath(new URL('./tools.sh', import.meta.url));

/** helm from $HELM, else built once by tools.sh; null when neither works (the suite is skipped, loudly). */
async function findHelm(): Promise<string | null> {
  try {
    if (process.env.HELM) return process.env.HELM;
    const { stdout } = await run('bash', [TOOLS, 'helm'], { timeout: 590_000 });
    return stdout.trim().split('\n').at(-1) || null;
  } catch (err) {
    console.warn(`!! helm could not be had (${(err as Error).message.split('\n')[0]}): the chart is NOT rendered or checked`);
    return null;
  }
}
const helm = await findHelm();

async function template(args: string[] = []): Promise<Manifest[]> {
  const { stdout } = await run(helm!, ['template', 'allocator-gateway', CHART, '--namespace', 'gw-system', ...args], { maxBuffer: 8 * 1024 * 1024 });
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(stdout)) {
    const obj = doc.toJSON() as Json;
    if (obj) out.push({ file: `helm:${obj.kind}/${obj.metadata.name}`, text: doc.toString(), obj });
  }
  return out;
}

const id = (o: Json) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const config = (objs: Manifest[]) => parseConfig(parse(objs.find((m) => m.obj.kind === 'ConfigMap')!.obj.data['config.yaml']));

/** An object without what only Helm adds (its labels, the config checksum) and with the config parsed. */
function comparable(o: Json): Json {
  const c = structuredClone(o);
  for (const meta of [c.metadata, c.spec?.template?.metadata]) {
    if (!meta) continue;
    for (const k of ['app.kubernetes.io/managed-by', 'helm.sh/chart']) delete meta.labels?.[k];
    delete meta.annotations?.['checksum/config'];
    if (meta.annotations && Object.keys(meta.annotations).length === 0) delete meta.annotations;
  }
  if (c.kind === 'ConfigMap') c.data['config.yaml'] = parseConfig(parse(c.data['config.yaml']));
  return c;
}

describe('helm chart', { skip: helm === null ? 'helm not available (bash test/deploy/tools.sh helm)' : false }, () => {
  test('helm lint passes', async () => {
    const { stdout } = await run(helm!, ['lint', CHART, '--namespace', 'gw-system']);
    assert.match(stdout, /0 chart\(s\) failed/);
  });

  test('with the default values it renders the kustomize manifests of deploy/, object for object', async () => {
    const rendered = await template(['--set', 'namespace.create=true']);
    const kustomize = loadManifests();
    assert.deepEqual(rendered.map((m) => id(m.obj)).sort(), kustomize.map((m) => id(m.obj)).sort());
    for (const k of kustomize) {
      const h = rendered.find((m) => id(m.obj) === id(k.obj))!;
      assert.deepEqual(comparable(h.obj), comparable(k.obj), id(k.obj));
    }
    // Without namespace.create (the default: helm --create-namespace) there is no Namespace object.
    assert.ok(!(await template()).some((m) => m.obj.kind === 'Namespace'));
  });

  test('values: replicas, certificates, config, authorization, RBAC scope, resources', async () => {
    const r = await template([
      '--set', 'replicas=3',
      '--set', 'namespaces={games,arena}',
      '--set', 'rbac.extraNamespaces={lobby,games}',
      '--set', 'certificates.serverSecretName=gw-server',
      '--set', 'certificates.clientCaSecretName=gw-callers',
      '--set', 'authorization.mode=enforce',
      '--set-json', 'authorization.clients={"uri:spiffe://example.org/mm":{"namespaces":["games"],"multiCluster":true}}',
      '--set', 'config.log.level=debug',
      '--set', 'config.admission.perClientRps=50',
      '--set', 'config.tls.certFile=/elsewhere/tls.crt', // fixed by the chart: ignored
      '--set', 'resources.limits.memory=2Gi',
      '--set', 'image.repository=registry.example/gw',
      '--set', 'image.tag=1.2.3',
    ]);
    const d = r.find((m) => m.obj.kind === 'Deployment')!.obj;
    assert.equal(d.spec.replicas, 3);
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.image, 'registry.example/gw:1.2.3');
    assert.equal(c.resources.limits.memory, '2Gi');
    assert.equal(c.resources.requests.memory, '512Mi');
    assert.deepEqual(pod.volumes.filter((v: Json) => v.secret).map((v: Json) => v.secret.secretName), ['gw-server', 'gw-callers']);
    const cfg = config(r);
    assert.ok(cfg.cluster.kind === 'kubernetes');
    assert.deepEqual(cfg.cluster.kind === 'kubernetes' && cfg.cluster.namespaces, ['games', 'arena']);
    assert.equal(cfg.log.level, 'debug');
    assert.equal(cfg.admission.perClientRps, 50);
    assert.equal(cfg.tls.certFile, '/etc/allocator-gateway/tls/tls.crt');
    assert.deepEqual(cfg.authorization, { mode: 'enforce', clients: { 'uri:spiffe://example.org/mm': { namespaces: ['games'], multiCluster: true } } });
    const bindings = r.filter((m) => m.obj.kind === 'RoleBinding').map((m) => `${m.obj.metadata.namespace}:${m.obj.roleRef.name}`).sort();
    assert.deepEqual(bindings, ['arena', 'games', 'lobby'].flatMap((ns) => [`${ns}:allocator-gateway`, `${ns}:allocator-gateway-multicluster`]));
    assert.ok(!r.some((m) => m.obj.kind === 'ClusterRoleBinding'), 'never a cluster-wide grant');
    // A config change rolls the pods.
    const before = (await template()).find((m) => m.obj.kind === 'Deployment')!.obj.spec.template.metadata.annotations['checksum/config'];
    assert.notEqual(d.spec.template.metadata.annotations['checksum/config'], before);

    const noMc = await template(['--set', 'rbac.multiCluster=false']);
    assert.deepEqual(noMc.filter((m) => m.obj.kind === 'ClusterRole').map((m) => m.obj.metadata.name), ['allocator-gateway']);
    assert.deepEqual(noMc.filter((m) => m.obj.kind === 'RoleBinding').map((m) => m.obj.roleRef.name), ['allocator-gateway']);
    const noEvents = await template(['--set', 'config.cluster.events.enabled=false']);
    assert.ok(!noEvents.some((m) => m.obj.kind === 'ClusterRole' && m.obj.rules.some((r: Json) => r.resources.includes('events'))), 'events off: no events rule');
    const eventsCfg = config(noEvents).cluster;
    assert.equal(eventsCfg.kind === 'kubernetes' ? eventsCfg.events.enabled : 'not kubernetes', false);
    const noRbac = await template(['--set', 'rbac.create=false']);
    assert.ok(!noRbac.some((m) => /Role/.test(m.obj.kind)));
  });

  describe('on a real API server', { skip: skipReason }, () => {
    let cp: ControlPlane;
    before(async () => {
      cp = await startControlPlane();
    });
    after(async () => {
      await cp?.stop();
    });

    for (const [name, args] of [
      ['default values', ['--set', 'namespace.create=true']],
      ['other namespaces, no multi-cluster role, ClusterIP', ['--set', 'namespaces={games}', '--set', 'rbac.extraNamespaces={lobby}', '--set', 'rbac.multiCluster=false', '--set', 'service.type=ClusterIP', '--set', 'replicas=3']],
    ] as const) {
      test(`rendered objects (${name}) pass server-side apply with dry run, strict fields, no warnings`, async () => {
        const objs = await template([...args]);
        // Namespaces the objects live in are created for real (a dry-run Namespace is not stored).
        for (const ns of new Set(['gw-system', ...objs.map((m) => m.obj.metadata.namespace).filter(Boolean)])) {
          if ((await cp.request('GET', `/api/v1/namespaces/${ns}`)).status === 404) {
            // the chart's own Namespace (with its Pod Security labels, so warnings show) when it renders one
            const own = objs.find((m) => m.obj.kind === 'Namespace' && m.obj.metadata.name === ns);
            const r = own ? await serverSideApply(cp, own, { dryRun: false }) : await cp.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
            assert.equal(r.status, 201, r.text);
          }
        }
        for (const m of objs) {
          const r = await serverSideApply(cp, m, { dryRun: true });
          assert.ok(r.status === 200 || r.status === 201, `${m.file}: HTTP ${r.status} ${r.text}`);
          assert.deepEqual(r.warnings, [], `${m.file}: warnings`);
          assert.equal(r.body.kind, m.obj.kind);
          if (m.obj.kind !== 'Namespace') assert.equal((await cp.request('GET', await resourcePath(cp, m.obj))).status, 404, `${m.file} not persisted`);
        }
      });
    }
  });
});
