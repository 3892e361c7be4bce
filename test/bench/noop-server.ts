// Baseline for benchmarks: a grpc-js server with exactly the gateway's listener settings (its
// server options, certificate-provider mTLS credentials and socket limits, from the same config
// defaults) whose Allocate does nothing but answer a fixed response.
// Usage: noop-server.ts CERT KEY CLIENT_CA_DIR. Prints {"port": N} on stdout once listening.
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/load.ts';
import { packageDefinition } from '../../src/protocol/proto.ts';
import { listenerOptions } from '../../src/server/grpc-server.ts';
import { applySocketLimits, grpcJsServers } from '../../src/server/socket-limits.ts';
import { grpcServerCredentials, TlsWatcher } from '../../src/server/tls.ts';

const [certFile, keyFile, clientCaDir] = process.argv.slice(2);
// The gateway's defaults, read the way the gateway reads them (a memory cluster needs no more).
const config = loadConfig([`--tls.certFile=${certFile}`, `--tls.keyFile=${keyFile}`, `--tls.clientCaDir=${clientCaDir}`, '--cluster.kind=memory', '--cluster.fleetFile=/dev/null'], {});
const adm = config.admission;
const tls = new TlsWatcher(config.tls, { pollMs: 1_000, onError: (err) => process.stderr.write(`${err.message}\n`) });
const server = new grpc.Server(listenerOptions({ maxReceiveMessageBytes: adm.maxMessageBytes, maxConcurrentStreams: adm.maxConcurrentStreams, maxSessionMemoryMiB: adm.maxSessionMemoryMiB }));
const response = {
  gameServerName: 'noop-000', address: '10.0.0.1', nodeName: 'node-1', source: 'local',
  ports: [{ name: 'default', port: 7000 }], addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
  metadata: { labels: { 'agones.dev/fleet': 'noop' }, annotations: {} }, counters: {}, lists: {},
};
server.addService(packageDefinition['allocation.AllocationService'] as grpc.ServiceDefinition, {
  Allocate: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, response),
});
server.bindAsync('127.0.0.1:0', grpcServerCredentials(tls), async (err, port) => {
  if (err) throw err;
  for (const s of grpcJsServers(server)) applySocketLimits(s, { maxConnections: adm.maxConnections, handshakeTimeoutMs: adm.handshakeTimeoutMs });
  await tls.delivered();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on('SIGTERM', () => {
  tls.close();
  server.forceShutdown();
});
