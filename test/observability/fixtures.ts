// A front gateway whose local cluster is empty, routing by policy to a dead endpoint first and then
// to a healthy remote gateway (both in process, real mTLS on 127.0.0.1): every allocation falls
// through local → dead → healthy, which exercises every operations signal at once.
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { simpleFleet } from '../helpers/gateway-process.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { deadEndpoint, policy, policyDir } from '../multicluster/fixtures.ts';

export interface FallThrough {
  readonly certs: TestCerts;
  readonly front: TestGateway;
  readonly healthy: TestGateway;
  readonly dead: string;
}

export async function startFallThrough(t: { after(fn: () => Promise<void> | void): void }, o: { frontConfig?: Record<string, unknown>; healthyConfig?: Record<string, unknown> } = {}): Promise<FallThrough> {
  const certs = devCerts(t);
  const healthy = await startGateway(t, { certs, fleet: simpleFleet('remote', 20), ...(o.healthyConfig ? { config: o.healthyConfig } : {}) });
  const dead = await deadEndpoint();
  const dir = policyDir(t, certs, [
    policy('here', { priority: 1, cluster: 'cluster-local' }),
    policy('gone', { priority: 2, endpoints: [dead], cluster: 'cluster-dead' }),
    policy('there', { priority: 3, endpoints: [healthy.grpcAddress], cluster: 'cluster-healthy' }),
  ]);
  const front = await startGateway(t, {
    certs,
    // Local capacity only in another namespace: requests for `default` fall through.
    fleet: simpleFleet('local', 2, 'elsewhere'),
    // A breaker that stays open for the whole test once the dead endpoint has opened it.
    config: { multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, breaker: { resetTimeoutMs: 600_000 } }, ...o.frontConfig },
  });
  return { certs, front, healthy, dead };
}
