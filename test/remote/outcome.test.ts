// The one classifier as a case table: a gateway's answer by its ErrorInfo, agones-allocator's by
// its status alone (the end-to-end cases are in test/multicluster/remote-outcomes.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { classify, GATEWAY_DOMAIN } from '../../src/remote/outcome.ts';

const gw = (reason: string, metadata: Record<string, string> = {}) => ({ reason, domain: GATEWAY_DOMAIN, metadata });

test('classify: gateway answers by ErrorInfo, others by status', () => {
  const cases: [string, Parameters<typeof classify>[0], string][] = [
    ['gateway OVERLOADED', { code: status.UNAVAILABLE, details: 'x', info: gw('OVERLOADED') }, 'refused/sent'],
    ['gateway RATE_LIMITED', { code: status.UNAVAILABLE, details: 'x', info: gw('RATE_LIMITED') }, 'refused/sent'],
    ['gateway NOT_READY', { code: status.UNAVAILABLE, details: 'x', info: gw('NOT_READY') }, 'refused/sent'],
    ['gateway NOT_READY, outcome unknown', { code: status.UNAVAILABLE, details: 'x', info: gw('NOT_READY', { ambiguous: 'true' }) }, 'failed/sent/ambiguous'],
    ['gateway NO_GAME_SERVER', { code: status.RESOURCE_EXHAUSTED, details: 'x', info: gw('NO_GAME_SERVER') }, 'no-capacity/sent'],
    ['gateway DEADLINE_EXCEEDED, definitive', { code: status.DEADLINE_EXCEEDED, details: 'x', info: gw('DEADLINE_EXCEEDED') }, 'failed/sent'],
    ['gateway IDEMPOTENCY_CONFLICT', { code: status.ALREADY_EXISTS, details: 'x', info: gw('IDEMPOTENCY_CONFLICT') }, 'failed/sent/ambiguous'],
    ['gateway INTERNAL', { code: status.INTERNAL, details: 'x', info: gw('INTERNAL') }, 'failed/sent/ambiguous'],
    ['foreign ErrorInfo is ignored', { code: status.UNAVAILABLE, details: 'x', info: { reason: 'OVERLOADED', domain: 'elsewhere', metadata: {} } }, 'failed/sent/ambiguous'],
    ['agones UNAVAILABLE after sending', { code: status.UNAVAILABLE, details: 'unavailable' }, 'failed/sent/ambiguous'],
    ['never connected', { code: status.UNAVAILABLE, details: 'No connection established. Last error: ECONNREFUSED' }, 'failed'],
    ['agones 422', { code: 422, details: 'is invalid' }, 'rejected/sent'],
    ['agones RESOURCE_EXHAUSTED', { code: status.RESOURCE_EXHAUSTED, details: 'there is no available GameServer to allocate' }, 'no-capacity/sent'],
    ['agones ABORTED contention', { code: status.ABORTED, details: 'too many concurrent requests have overwhelmed the system' }, 'refused/sent'],
    ['our deadline while sent', { code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }, 'failed/sent/ambiguous'],
    ['stream reset', { code: status.INTERNAL, details: 'Received RST_STREAM with code 2' }, 'failed/sent/ambiguous'],
  ];
  for (const [name, answer, want] of cases) {
    const c = classify(answer);
    assert.equal([c.outcome, c.sent ? 'sent' : '', c.ambiguous ? 'ambiguous' : ''].filter(Boolean).join('/'), want, name);
  }
});
