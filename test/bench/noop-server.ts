// Baseline for benchmarks: a grpc-js server with the gateway's listener settings and mTLS whose
// Allocate does nothing but answer a fixed response. Usage: noop-server.ts CERT KEY CLIENT_CA_DIR
// Prints {"port": N} on stdout once listening.
import * as grpc from '@grpc/grpc-js';
import { loadTlsMaterial } from '../../src/server/tls.ts';
import { packageDefinition } from '../../src/protocol/proto.ts';

const [certFile, keyFile, clientCaDir] = process.argv.slice(2);
const m = loadTlsMaterial({ certFile: certFile!, keyFile: keyFile!, clientCaDir: clientCaDir! });
const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
const response = {
  gameServerName: 'noop-000', address: '10.0.0.1', nodeName: 'node-1', source: 'local',
  ports: [{ name: 'default', port: 7000 }], addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
  metadata: { labels: { 'agones.dev/fleet': 'noop' }, annotations: {} }, counters: {}, lists: {},
};
server.addService(packageDefinition['allocation.AllocationService'] as grpc.ServiceDefinition, {
  Allocate: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, response),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(m.ca, [{ cert_chain: m.cert, private_key: m.key }], true), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
