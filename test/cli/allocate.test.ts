// The allocate CLI against a live gateway: what a newcomer runs from the README.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { readyPool } from '../helpers/game-servers.ts';
import { startGateway } from '../helpers/gateway.ts';

const run = promisify(execFile);
const CLI = new URL('../../src/cli/allocate.ts', import.meta.url).pathname;

test('allocate prints the response as proto3 JSON; a refusal exits 1 with the status', async (t) => {
  const certs = devCerts(t);
  const gw = await startGateway(t, { certs, gameServers: readyPool(3, { labels: { mode: 'ranked' } }) });
  const args = ['--address', gw.grpcAddress, '--server-name', 'localhost', '--ca', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile];
  const ok = await run(process.execPath, [CLI, ...args, '--request', '{"namespace":"default","gameServerSelectors":[{"matchLabels":{"mode":"ranked"}}],"metadata":{"labels":{"match":"m1"}}}']);
  const res = JSON.parse(ok.stdout);
  assert.match(res.gameServerName, /^gs-000\d$/);
  assert.equal(res.source, 'local');
  assert.equal(res.metadata.labels.match, 'm1');
  assert.deepEqual(Object.keys(res).sort(), ['address', 'addresses', 'counters', 'gameServerName', 'lists', 'metadata', 'nodeName', 'ports', 'source']);
  const refused = await run(process.execPath, [CLI, ...args, '--request', '{"gameServerSelectors":[{"matchLabels":{"mode":"casual"}}]}']).catch((e: { code: number; stderr: string }) => e);
  assert.equal((refused as { code: number }).code, 1);
  const status = JSON.parse((refused as { stderr: string }).stderr);
  assert.equal(status.codeName, 'RESOURCE_EXHAUSTED');
  assert.equal(status.errorInfo.reason, 'NO_GAME_SERVER');
  const usage = await run(process.execPath, [CLI, '--address', gw.grpcAddress]).catch((e: { code: number; stderr: string }) => e);
  assert.equal((usage as { code: number }).code, 2);
  assert.match((usage as { stderr: string }).stderr, /--ca, --cert and --key are required/);
});
