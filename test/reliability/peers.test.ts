// Short versions of the unauthenticated and slow peer scenarios (npm run reliability runs them longer).
import { after, describe, test } from 'node:test';
import { devCerts } from '../helpers/certs.ts';
import { handshakeFlood, partialMessages, slowBodies } from './scenarios-peers.ts';
import { ghzPath } from './load.ts';
import { FULL, report } from './report.ts';

let skip: string | false = false;
try {
  ghzPath();
} catch (err) {
  skip = `ghz unavailable (needs Go to build): ${(err as Error).message.slice(0, 200)}`;
}

describe('reliability: unauthenticated and slow peers (short)', { skip }, () => {
  const certs = devCerts({ after });
  const owner = { after };
  test('a TLS handshake flood from one address locks no one out; fds bounded, ledger balanced', async () => report(await handshakeFlood(owner, certs, { durationMs: FULL ? 20_000 : 6_000 })));
  test('REST bodies trickled by one identity take only its share of admission; ledger balanced', async () => report(await slowBodies(owner, certs, FULL ? { sockets: 1_024, maxInFlight: 1_024 } : { sockets: 256, maxInFlight: 128 })));
  test('partial gRPC messages from one identity stay within its share of memory; ledger balanced', async () => report(await partialMessages(owner, certs, FULL ? { connections: 8, streams: 64 } : { connections: 4, streams: 48 })));
});
