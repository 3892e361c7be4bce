// deploy/: the manifests agree with each other and with the code (static checks), every one is
// accepted by a real API server (server-side apply, dry run, strict field validation, no Pod
// Security warnings), and the RBAC they grant is enough for a real gateway and no more.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { KubernetesIdempotencyLedger } from '../../src/router/kubernetes/idempotency-ledger.ts';
import { startControlPlane, type ControlPlane, type Json } from '../cluster/control-plane.ts';
import { devCerts } from '../helpers/certs.ts';
import { policy } from '../multicluster/fixtures.ts';
import {
  apiCall,
  DEPLOY_DIR,
  loadManifests,
  manifest,
  resourcePath,
  serverSideApply,
  skipReason,
  startLocalGateway,
  until,
  type Manifest,
} from './fixtures.ts';

const all = loadManifests();
const deployment = manifest(all, 'Deployment');
const pod = deployment.spec.template.spec;
const container = (pod.containers as Json[]).find((c) => c.name === 'gateway');
const configMap = manifest(all, 'ConfigMap');
const config = parseConfig(parse(configMap.data['config.yaml']));
const serviceAccount = manifest(all, 'ServiceAccount');

/** The rules the code needs (see rbac.yaml's table): group/resource → verbs. */
const NEEDED: Record<string, string[]> = {
  'agones.dev/gameservers': ['get', 'list', 'update', 'watch'],
  'coordination.k8s.io/leases': ['create', 'delete', 'get', 'list', 'update'],
  'multicluster.agones.dev/gameserverallocationpolicies': ['list', 'watch'],
  '/secrets': ['list', 'watch'],
  '/events': ['create', 'patch'],
};

function mountOf(volumeName: string): string {
  const m = (container.volumeMounts as Json[]).find((v) => v.name === volumeName);
  assert.ok(m, `a mount of volume ${volumeName}`);
  return m.mountPath;
}

function volume(pred: (v: Json) => boolean, what: string): Json {
  const v = (pod.volumes as Json[]).find(pred);
  assert.ok(v, what);
  return v;
}

function matchesTemplate(selector: Record<string, string>): boolean {
  const labels = deployment.spec.template.metadata.labels as Record<string, string>;
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('deploy/ manifests agree with each other and with the code', () => {
  test('kustomization.yaml lists every manifest file, and only those', () => {
    const k = parse(readFileSync(join(DEPLOY_DIR, 'kustomization.yaml'), 'utf8'));
    const files = readdirSync(DEPLOY_DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
    assert.deepEqual([...k.resources].sort(), files);
    assert.ok(!k.resources.some((r: string) => r.startsWith('crds')), 'the stand-in CRDs are not installed over Agones');
    for (const m of all) {
      assert.ok(m.obj.apiVersion && m.obj.kind && m.obj.metadata?.name, `${m.file}: apiVersion, kind, metadata.name`);
    }
  });

  test('the ConfigMap holds a valid config for the in-cluster service account', () => {
    assert.equal(config.cluster.kind, 'kubernetes');
    assert.ok(config.cluster.kind === 'kubernetes' && config.cluster.kubeconfig === undefined, 'no kubeconfig: in-cluster config');
    assert.equal(config.multiCluster.policySource, 'kubernetes');
    const args = container.args as string[];
    const configPath = args[args.indexOf('--config') + 1]!;
    const cfgVolume = volume((v) => v.configMap?.name === configMap.metadata.name, 'the ConfigMap is a volume');
    assert.equal(configPath, posix.join(mountOf(cfgVolume.name), 'config.yaml'));
  });

  test('TLS files come from Secret mounts with cert-manager names (tls.crt, tls.key) and a client-CA directory', () => {
    const tls = config.tls;
    assert.equal(posix.basename(tls.certFile), 'tls.crt');
    assert.equal(posix.basename(tls.keyFile), 'tls.key');
    assert.equal(posix.dirname(tls.certFile), posix.dirname(tls.keyFile));
    const serverVol = volume((v) => mountOf(v.name) === posix.dirname(tls.certFile), 'a volume mounted where tls.certFile lives');
    assert.ok(serverVol.secret?.secretName, 'the server certificate is a Secret');
    const caVol = volume((v) => mountOf(v.name) === tls.clientCaDir, 'a volume mounted at tls.clientCaDir');
    assert.ok(caVol.secret?.secretName, 'the client CAs are a Secret');
    assert.notEqual(caVol.secret.secretName, serverVol.secret.secretName);
    for (const v of [serverVol, caVol]) {
      assert.equal(v.secret.items, undefined, 'whole Secret mounted: key renames would break cert-manager rotation');
      assert.equal(v.secret.defaultMode, 0o440, 'owner and group (fsGroup) read only');
    }
  });

  test('ports, probes and Services line up with the config', () => {
    const ports = new Map((container.ports as Json[]).map((p) => [p.name as string, p.containerPort as number]));
    assert.deepEqual(Object.fromEntries(ports), { grpc: config.grpc.port, rest: config.rest.port, ops: config.ops.port });
    assert.deepEqual([container.readinessProbe.httpGet.path, container.readinessProbe.httpGet.port], ['/ready', 'ops']);
    assert.deepEqual([container.livenessProbe.httpGet.path, container.livenessProbe.httpGet.port], ['/live', 'ops']);
    const svc = manifest(all, 'Service', 'allocator-gateway');
    const byName = new Map((svc.spec.ports as Json[]).map((p) => [p.name as string, p]));
    assert.deepEqual([byName.get('grpc')?.port, byName.get('grpc')?.targetPort], [443, 'grpc']);
    assert.equal(byName.get('rest')?.targetPort, 'rest');
    assert.ok(!(svc.spec.ports as Json[]).some((p) => p.targetPort === 'ops'), 'the plain-HTTP ops port is not on the callers\' Service');
    for (const s of all.filter((m) => m.obj.kind === 'Service')) {
      assert.ok(matchesTemplate(s.obj.spec.selector), `${s.obj.metadata.name} selects the gateway's pods`);
      for (const p of s.obj.spec.ports as Json[]) assert.ok(ports.has(p.targetPort), `${s.obj.metadata.name}: ${p.targetPort} is a container port`);
    }
  });

  test('shutdown: the grace period covers readiness drain + in-flight grace; the drain outlasts a readiness probe', () => {
    const graceMs = pod.terminationGracePeriodSeconds * 1000;
    const { readinessDrainMs, graceMs: inflightMs } = config.shutdown;
    assert.ok(readinessDrainMs > 0, 'readiness turns false before listeners close');
    assert.ok(graceMs >= readinessDrainMs + inflightMs + 5_000, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} s ≥ ${readinessDrainMs} + ${inflightMs} ms + 5 s to close`);
    const probe = container.readinessProbe;
    assert.ok(readinessDrainMs >= 2 * probe.periodSeconds * probe.failureThreshold * 1000, 'the kubelet sees readiness false before the listeners close');
    assert.equal(container.lifecycle?.preStop, undefined, 'no preStop: the gateway drains itself on SIGTERM');
  });

  test('two replicas spread over nodes, a PDB that keeps one, selectors that match the pods', () => {
    assert.equal(deployment.spec.replicas, 2);
    assert.ok(matchesTemplate(deployment.spec.selector.matchLabels));
    const pdb = manifest(all, 'PodDisruptionBudget');
    assert.ok(matchesTemplate(pdb.spec.selector.matchLabels));
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < deployment.spec.replicas, 'PDB allows one disruption, keeps one replica');
    const spread = pod.topologySpreadConstraints as Json[];
    const host = spread.find((s) => s.topologyKey === 'kubernetes.io/hostname');
    assert.ok(host && host.whenUnsatisfiable === 'DoNotSchedule' && matchesTemplate(host.labelSelector.matchLabels), 'replicas on different nodes');
    assert.deepEqual(deployment.spec.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
  });

  test('non-root, read-only, no capabilities; requests and limits set; the image is a placeholder', () => {
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.deepEqual(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    for (const k of ['requests', 'limits']) for (const r of ['cpu', 'memory']) assert.ok(container.resources[k][r], `resources.${k}.${r}`);
    assert.equal(container.image, 'allocator-gateway:0.1.0');
    assert.equal(pod.serviceAccountName, serviceAccount.metadata.name);
  });

  test('RBAC grants exactly what the code calls, only through RoleBindings in the served namespaces', () => {
    const granted: Record<string, string[]> = {};
    for (const role of all.filter((m) => m.obj.kind === 'ClusterRole' || m.obj.kind === 'Role')) {
      for (const rule of role.obj.rules as Json[]) {
        assert.equal(rule.resourceNames, undefined);
        for (const g of rule.apiGroups) for (const r of rule.resources) (granted[`${g}/${r}`] ??= []).push(...rule.verbs);
      }
    }
    for (const k of Object.keys(granted)) granted[k] = [...new Set(granted[k])].sort();
    assert.deepEqual(granted, NEEDED);
    assert.ok(!all.some((m) => m.obj.kind === 'ClusterRoleBinding'), 'no cluster-wide grant');
    const bindings = all.filter((m) => m.obj.kind === 'RoleBinding').map((m) => m.obj);
    const roles = all.filter((m) => m.obj.kind === 'ClusterRole').map((m) => m.obj.metadata.name as string).sort();
    for (const ns of config.cluster.kind === 'kubernetes' ? config.cluster.namespaces : []) {
      const here = bindings.filter((b) => b.metadata.namespace === ns);
      assert.deepEqual(here.map((b) => b.roleRef.name).sort(), roles, `namespace ${ns} binds every ClusterRole`);
    }
    for (const b of bindings) {
      assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: serviceAccount.metadata.namespace }]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// on a real API server

let cp: ControlPlane;

before(async () => {
  if (skipReason) return;
  cp = await startControlPlane();
});
after(async () => {
  await cp?.stop();
});

const byOrder = (m: Manifest) => (m.obj.kind === 'Namespace' ? 0 : 1);

describe('deploy/ on a real API server', { skip: skipReason }, () => {
  test('every manifest is accepted by server-side apply with dry run, strict field validation and no warnings', async () => {
    const namespaces = all.filter((m) => m.obj.kind === 'Namespace');
    for (const m of [...all].sort((a, b) => byOrder(a) - byOrder(b))) {
      if (m.obj.kind !== 'Namespace' && m.obj.metadata.namespace !== undefined) {
        // a dry-run Namespace is not created, and namespaced objects need theirs: create it for real once
        const ns = namespaces.find((n) => n.obj.metadata.name === m.obj.metadata.namespace);
        if (ns && (await cp.request('GET', `/api/v1/namespaces/${ns.obj.metadata.name}`)).status === 404) {
          const r = await serverSideApply(cp, ns, { dryRun: false });
          assert.equal(r.status, 201, r.text);
        }
      }
      const r = await serverSideApply(cp, m, { dryRun: true });
      assert.ok(r.status === 200 || r.status === 201, `${m.file} ${m.obj.kind}/${m.obj.metadata.name}: HTTP ${r.status} ${r.text}`);
      assert.deepEqual(r.warnings, [], `${m.file} ${m.obj.kind}/${m.obj.metadata.name}: warnings`);
      assert.equal(r.body.kind, m.obj.kind);
      // dry run: nothing stored (the namespace aside)
      if (m.obj.kind !== 'Namespace') assert.equal((await cp.request('GET', await resourcePath(cp, m.obj))).status, 404, `${m.obj.kind} not persisted`);
    }
  });

  test('the dry run does check: a wrong field is rejected and a privileged container is warned about', async () => {
    const d = all.find((m) => m.obj.kind === 'Deployment')!;
    const bad = { text: d.text.replace('revisionHistoryLimit: 5', 'revisionHistoryLimit: 5\n  replica: 3'), obj: d.obj };
    const r1 = await serverSideApply(cp, bad, { dryRun: true });
    // server-side apply answers a field outside the schema with 500 "failed to create typed patch object"
    assert.ok(r1.status >= 400, r1.text);
    assert.match(r1.text, /\.spec\.replica: field not declared in schema/);
    const wrongType = { text: d.text.replace('replicas: 2', 'replicas: two'), obj: d.obj };
    const r3 = await serverSideApply(cp, wrongType, { dryRun: true });
    assert.ok(r3.status >= 400, r3.text);
    const privileged = { text: d.text.replace('allowPrivilegeEscalation: false', 'allowPrivilegeEscalation: true'), obj: d.obj };
    const r2 = await serverSideApply(cp, privileged, { dryRun: true });
    assert.ok(r2.status === 200 || r2.status === 201, r2.text);
    assert.ok(r2.warnings.some((w) => /would violate PodSecurity \\?"restricted/.test(w)), `Pod Security warning: ${r2.warnings.join(' | ')}`);
  });

  test('the RBAC is enough for a real gateway (ready, allocate, idempotency Leases, policies, secrets) and no more', async (t) => {
    // the harness's service-account user is the manifests' ServiceAccount: bind it with the manifests alone
    assert.equal(cp.saUser, `system:serviceaccount:${serviceAccount.metadata.namespace}:${serviceAccount.metadata.name}`);
    const ns = config.cluster.kind === 'kubernetes' ? config.cluster.namespaces[0]! : 'default';
    for (let i = 0; i < 3; i++) await cp.createGameServer(ns, { name: `rbac-${i}`, labels: { 'agones.dev/fleet': 'rbac' } });
    const certs = devCerts(t);
    const cfg = parse(configMap.data['config.yaml']);
    const gw = await startLocalGateway(t, certs, {
      cluster: { ...cfg.cluster, kubeconfig: cp.saKubeconfigPath },
      multiCluster: cfg.multiCluster,
      shutdown: { readinessDrainMs: 0, graceMs: 1_000 },
    });

    // before the RBAC exists: forbidden, not ready, and Allocate says so
    await until('a forbidden list logged', () => gw.logs.some((l) => /forbidden/i.test(String(l.err))), 10_000);
    assert.equal(await gw.readyStatus(), 503);
    const early = await gw.allocate({ namespace: ns });
    assert.deepEqual('code' in early ? [early.code, early.reason] : early, ['UNAVAILABLE', 'NOT_READY']);

    for (const m of all.filter((x) => ['ClusterRole', 'RoleBinding'].includes(x.obj.kind))) {
      const r = await serverSideApply(cp, m, { dryRun: false });
      assert.ok(r.status === 200 || r.status === 201, `${m.obj.kind}/${m.obj.metadata.name}: ${r.text}`);
    }
    const granted = gw.logs.length;
    await until('ready once the RBAC is applied', async () => (await gw.readyStatus()) === 200, 20_000);

    const plain = await gw.allocate({ namespace: ns, gameServerSelectors: [{ matchLabels: { 'agones.dev/fleet': 'rbac' } }] });
    assert.ok('ok' in plain, JSON.stringify(plain));
    assert.equal((await cp.getGameServer(ns, plain.ok)).status.state, 'Allocated');
    // its Allocated Event, written as the service account
    await until('the Allocated event', async () => {
      const r = await cp.request('GET', `/api/v1/namespaces/${ns}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${plain.ok},reason=Allocated`)}`);
      return r.body.items.length === 1;
    }, 10_000);

    const k1 = await gw.allocate({ namespace: ns }, { idempotencyKey: 'rbac-key' });
    const k2 = await gw.allocate({ namespace: ns }, { idempotencyKey: 'rbac-key' });
    assert.ok('ok' in k1 && 'ok' in k2, JSON.stringify([k1, k2]));
    assert.equal(k2.ok, k1.ok);
    const leases = await cp.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`);
    assert.equal(leases.body.items.length, 1, 'the idempotency record is a Lease');

    // multi-cluster: the policy (and the Secret informer) are read as the service account
    const p = await cp.request('POST', `/apis/multicluster.agones.dev/v1/namespaces/${ns}/gameserverallocationpolicies`, policy('local', { priority: 1, cluster: 'here', namespace: ns, policyNamespace: ns }));
    assert.equal(p.status, 201, p.text);
    // the policy reaches the gateway through its watch, which may lag the create: until then the
    // answer is NO_POLICY (nothing allocated), and nothing else is acceptable
    const mc = await until('a multi-cluster allocation through the new policy', async () => {
      const r = await gw.allocate({ namespace: ns, multiClusterSetting: { enabled: true } });
      if ('ok' in r) return r;
      assert.equal(r.reason, 'NO_POLICY', JSON.stringify(r));
      return undefined;
    }, 10_000);
    assert.ok('ok' in mc, JSON.stringify(mc));

    // the ledger's sweep (list + delete) and release (delete) as the service account
    const ledger = new KubernetesIdempotencyLedger({ kubeConfig: cp.saKubeconfigPath, retentionMs: 1, holder: 'test', logger: { warn: () => {} } });
    t.after(() => ledger.close());
    const signal = AbortSignal.timeout(5_000);
    assert.equal((await ledger.claim(ns, 'released', 60_000, signal, '')).kind, 'won');
    await ledger.release(ns, 'released');
    assert.equal((await ledger.claim(ns, 'swept', 60_000, signal, '')).kind, 'won');
    await ledger.complete(ns, 'swept', { gameServerName: 'x', namespace: ns, address: '', addresses: [], ports: [], nodeName: '', metadata: { labels: {}, annotations: {} }, counters: {}, lists: {}, source: 'local' });
    await new Promise((r) => setTimeout(r, 20));
    assert.ok((await ledger.sweep()) >= 1, 'expired records swept');

    const denied = gw.logs.slice(granted).filter((l) => /forbidden/i.test(JSON.stringify(l)));
    assert.deepEqual(denied, [], 'nothing forbidden once the RBAC is applied');

    // the read-back of a write whose answer was lost (no failure of that kind happened above)
    const sa = (method: string, path: string, body?: unknown) => apiCall(cp, cp.saToken, method, path, body);
    assert.equal((await sa('GET', `/apis/agones.dev/v1/namespaces/${ns}/gameservers/rbac-0`)).status, 200);

    // and no more than that
    const gsBody = { apiVersion: 'agones.dev/v1', kind: 'GameServer', metadata: { name: 'forged' }, spec: {} };
    const forbidden: [string, string, unknown?][] = [
      ['POST', `/apis/agones.dev/v1/namespaces/${ns}/gameservers?dryRun=All`, gsBody],
      ['DELETE', `/apis/agones.dev/v1/namespaces/${ns}/gameservers/rbac-0?dryRun=All`],
      ['PATCH', `/apis/agones.dev/v1/namespaces/${ns}/gameservers/rbac-0?dryRun=All`, {}],
      ['GET', '/apis/agones.dev/v1/gameservers'],
      ['GET', '/apis/agones.dev/v1/namespaces/kube-system/gameservers'],
      ['GET', `/api/v1/namespaces/${ns}/secrets/anything`],
      ['GET', `/api/v1/namespaces/${serviceAccount.metadata.namespace}/secrets`],
      ['POST', `/api/v1/namespaces/${ns}/secrets?dryRun=All`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } }],
      ['POST', `/apis/multicluster.agones.dev/v1/namespaces/${ns}/gameserverallocationpolicies?dryRun=All`, policy('forged', { priority: 1, policyNamespace: ns })],
      ['GET', `/api/v1/namespaces/${ns}/events`],
      ['DELETE', `/api/v1/namespaces/${ns}/events/anything?dryRun=All`],
      ['POST', `/api/v1/namespaces/kube-system/events?dryRun=All`, { apiVersion: 'v1', kind: 'Event', metadata: { name: 'x' }, involvedObject: {} }],
      ['GET', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases'],
      ['GET', '/api/v1/namespaces'],
    ];
    for (const [method, path, body] of forbidden) {
      const r = await sa(method, path, body);
      assert.equal(r.status, 403, `${method} ${path} must be forbidden: ${r.status} ${r.text}`);
    }
  });
});
