// Baseline for benchmarks: a grpc-js server with exactly the gateway's listener settings (its
// server options, certificate-provider mTLS credentials and socket limits, from the same config
// defaults) whose Allocate does nothing but answer a fixed response.
// Usage: noop-server.ts CERT KEY CLIENT_CA_DIR. Prints {"port": N} on stdout once listening.
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/load.ts';
import { packageDefinition } from '../../src/protocol/proto.ts';
import { listenerOptions } from '../../src/server/grpc-server.ts';
import { applyReceiveLimits } from '../../src/server/receive-limits.ts';
import { applySocketLimits, grpcJsServers } from '../../src/server/socket-limits.ts';
import { clientIdentity, grpcServerCredentials, TlsWatcher } from '../../src/server/tls.ts';
import type { TLSSocket } from 'node:tls';

const [certFile, keyFile, clientCaDir] = process.argv.slice(2);
// The gateway's defaults, read the way the gateway reads them (a memory cluster needs no more).
const config = loadConfig([`--tls.certFile=${certFile}`, `--tls.keyFile=${keyFile}`, `--tls.clientCaDir=${clientCaDir}`, '--cluster.kind=memory', '--cluster.fleetFile=/dev/null'], {});
const adm = config.admission;
const tls = new TlsWatcher(config.tls, { pollMs: 1_000, onError: (err) => process.stderr.write(`${err.message}\n`) });
const server = new grpc.Server(listenerOptions({
  maxReceiveMessageBytes: adm.maxMessageBytes, maxConcurrentStreams: adm.maxConcurrentStreams, maxSessionMemoryMiB: adm.maxSessionMemoryMiB,
  maxConnectionAgeMs: adm.maxConnectionAgeMs, maxConnectionAgeGraceMs: adm.maxConnectionAgeGraceMs,
}));
const MiB = 1024 * 1024;
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
  // As src/main.ts and GrpcServer.listen() apply them.
  const servers = grpcJsServers(server);
  const identityOf = (socket: TLSSocket): string => clientIdentity(socket.getPeerCertificate()) ?? '(anonymous)';
  const socketLimits = {
    maxConnections: adm.maxConnections, handshakeTimeoutMs: adm.handshakeTimeoutMs, maxHandshakes: adm.maxHandshakes, maxHandshakesPerPeer: adm.maxHandshakesPerPeer,
    maxConnectionsPerClient: adm.perClientShare < 1 ? Math.max(1, Math.floor(adm.maxConnections * adm.perClientShare)) : Infinity,
  };
  for (const s of servers) applySocketLimits(s, socketLimits, identityOf);
  applyReceiveLimits(servers, {
    perConnectionBytes: adm.maxSessionMemoryMiB * MiB, totalBytes: adm.maxPendingRequestMiB * MiB,
    perClientBytes: Math.max(adm.maxMessageBytes, Math.floor(adm.maxPendingRequestMiB * MiB * adm.perClientShare)), timeoutMs: adm.bodyTimeoutMs,
  }, identityOf);
  await tls.delivered();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on('SIGTERM', () => {
  tls.close();
  server.forceShutdown();
});
