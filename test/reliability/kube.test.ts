// Short versions of the Kubernetes reliability scenarios (real etcd + kube-apiservers, gateways
// as child processes, load from a caller process). npm run reliability runs them longer.
import { after, before, describe, test } from 'node:test';
import { controlPlaneBinaries } from '../cluster/control-plane.ts';
import { devCerts } from '../helpers/certs.ts';
import { FULL, report } from './report.ts';
import { controlPlaneFaults, remoteKilled, replicaKilled, soak, startKubeEnv, type KubeEnv } from './scenarios-kube.ts';

const bins = controlPlaneBinaries();
const skip: string | false = 'missing' in bins ? bins.missing : false;

describe('reliability on real API servers (short)', { skip }, () => {
  const certs = devCerts({ after });
  const cleanups: (() => Promise<void> | void)[] = [];
  const owner = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  let env: KubeEnv;
  before(async () => {
    env = await startKubeEnv();
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await env?.stop();
  });
  test('kube-apiserver restart, etcd pause, watch expiry (410) under load: ledger balances', async () => report(await controlPlaneFaults(owner, certs, env, FULL ? { phaseMs: 20_000, rps: 60 } : { phaseMs: 6_000, rps: 40 })));
  test('a replica SIGKILLed mid-allocation: callers retrying the same key are all told, nothing lost', async () => report(await replicaKilled(owner, certs, env, FULL ? { total: 1_200, rps: 60 } : { total: 150, rps: 30 })));
  test('a remote allocator SIGKILLed mid-request behind a black-holed endpoint: nothing lost or doubled', async () => report(await remoteKilled(owner, certs, env, FULL ? { total: 600, rps: 30 } : { total: 120, rps: 20 })));
  test('soak: flat memory, no fd leak, p99 stable, ledger balances with re-readied GameServers', async () => {
    const r = await soak(owner, certs, env, FULL ? { windows: 13, windowMs: 40_000, rps: 100 } : { windows: 3, windowMs: 8_000, rps: 40 });
    console.log(r.samples.join('\n'));
    report({ ...r, samples: undefined } as never);
  });
});
