// Short versions of the embedded-cluster reliability scenarios (npm run reliability runs them longer).
import { after, describe, test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { certRotation, flood, rateLimit, sigterm, slowClients } from './scenarios-memory.ts';
import { handshakeFlood, partialMessages, slowBodies } from './scenarios-peers.ts';
import { FULL, report } from './report.ts';

describe('reliability on the embedded cluster (short)', () => {
  const certs = devCerts({ after });
  const owner = { after };
  test('overload flood is shed with OVERLOADED, memory bounded, ledger balanced', async () => report(await flood(owner, certs, FULL ? { total: 100_000, pool: 5_000 } : { total: 6_000, pool: 2_000 })));
  test('per-client rate limit holds', async () => report(await rateLimit(owner, certs, { durationMs: FULL ? 15_000 : 3_000 })));
  test('slow and half-open clients do not hurt real callers, no fd leak', async () => report(await slowClients(owner, certs, FULL ? { durationMs: 20_000, sockets: 200 } : { durationMs: 4_000, sockets: 100 })));
  test('certificates rotated under load', async () => report(await certRotation(owner, certs, { durationMs: FULL ? 20_000 : 4_000 })));
  test('SIGTERM under load drains cleanly', async () => report(await sigterm(owner, certs, { durationMs: FULL ? 15_000 : 4_000 })));
  // Unauthenticated and slow peers (issue 12): the flood and slow-client shapes at the connection and request level.
  test('a TLS handshake flood from one address locks no one out; fds bounded, ledger balanced', async () => report(await handshakeFlood(owner, certs, { durationMs: FULL ? 20_000 : 6_000 })));
  test('REST bodies trickled by one identity take only its share of admission; ledger balanced', async () => report(await slowBodies(owner, certs, FULL ? { sockets: 1_024, maxInFlight: 1_024 } : { sockets: 256, maxInFlight: 128 })));
  test('partial gRPC messages from one identity stay within its share of memory; ledger balanced', async () => report(await partialMessages(owner, certs, FULL ? { connections: 8, streams: 64 } : { connections: 4, streams: 48 })));
});
