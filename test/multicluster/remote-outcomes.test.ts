// What callers are told about remote outcomes, on real servers with real mTLS: a front gateway
// (in process) forwarding to gateways (child processes) and to the agones-allocator stand-in.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import { AllocatorError } from '../../src/client/index.ts';
import { devCerts, type TestCerts } from '../helpers/certs.ts';
import { caught, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { simpleFleet, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts';
import { parseFleetFile } from '../../src/cluster/memory/fleet-file.ts';
import { attemptsOf, policy, policyDir } from './fixtures.ts';

const MC = { enabled: true };
const certs: TestCerts = devCerts({ after });

/** A front gateway with `ready` local GameServers (fleet "a") and these policies. */
async function front(t: TestContext, policies: object[], o: { ready?: number; multiCluster?: Record<string, unknown> } = {}): Promise<TestGateway> {
  const dir = policyDir(t, certs, policies);
  return await startGateway(t, {
    certs,
    gameServers: parseFleetFile(simpleFleet('a', o.ready ?? 0)),
    config: { multiCluster: { policySource: 'file', policyFile: dir.policyFile, secretsDir: dir.secretsDir, ...o.multiCluster }, log: { level: 'debug' } },
  });
}

describe("a remote gateway's answers are classified from its ErrorInfo", () => {
  test('RATE_LIMITED (a definitive refusal) falls through to the next tier, without a key', async (t) => {
    const [limited, spare] = (await Promise.all([
      startGatewayProcess(t, { certs, name: 'limited', fleet: simpleFleet('l', 5), config: { admission: { perClientRps: 0.001, perClientBurst: 1 } } }),
      startGatewayProcess(t, { certs, name: 'spare', fleet: simpleFleet('s', 5) }),
    ])) as [GatewayProcess, GatewayProcess];
    const a = await front(t, [policy('limited', { priority: 1, endpoints: [limited.address] }), policy('spare', { priority: 2, endpoints: [spare.address] })]);
    // Its one token goes to the first call it sees (the front's GetCapacity or Allocate): from then on it refuses.
    for (let i = 0; i < 2; i++) await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    const r = await a.client().allocate({ namespace: 'default', multiClusterSetting: MC }, { deadline: 5_000 });
    assert.equal(r.source, spare.address);
    assert.ok(limited.logs.some((l) => l.outcome === 'RATE_LIMITED'), 'limited refused an Allocate');
    const line = a.logs.find((l) => l.target === 'limited' && l.outcome === 'refused');
    assert.ok(line, 'the refusal is logged as refused');
    assert.equal(line.code, 'UNAVAILABLE');
  });
});
