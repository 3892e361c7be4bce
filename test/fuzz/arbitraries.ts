// fast-check arbitraries for Allocate requests: valid ones (Agones' rules), and the same shapes
// with any JSON value anywhere.
import fc from 'fast-check';
import { OBJECT_PROPERTY_NAMES } from '../helpers/game-servers.ts';

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
const labelName = fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?$/);
/** Names every JavaScript object has ("constructor", "__proto__"…): to Agones they are ordinary keys. */
const propertyName = fc.constantFrom(...OBJECT_PROPERTY_NAMES);
/** Counter, list and priority names: any string to Agones. */
const mapName = fc.oneof(labelName, propertyName);
const labelKey = fc.oneof(labelName, propertyName.filter((k) => /^[A-Za-z0-9]/.test(k)), fc.tuple(dnsLabel, labelName).map(([p, n]) => `${p}/${n}`));
const labelValue = fc.oneof(fc.constant(''), labelName);
const labels = fc.dictionary(labelKey, labelValue, { maxKeys: 5 });
const small = fc.integer({ min: 0, max: 100 });
/** int64 amounts: small, or anywhere up to 2^63-1 as a decimal string (exact beyond 2^53). */
const int64 = fc.oneof(small, small.map(String), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String));

const counterSelector = fc.record({ minCount: small, maxCount: small, minAvailable: small, maxAvailable: small }, { requiredKeys: [] })
  .map((c) => ({ ...c, ...(c.maxCount !== undefined && c.minCount !== undefined && c.maxCount < c.minCount ? { maxCount: 0 } : {}), ...(c.maxAvailable !== undefined && c.minAvailable !== undefined && c.maxAvailable < c.minAvailable ? { maxAvailable: 0 } : {}) }));
const listSelector = fc.record({ containsValue: labelName, minAvailable: small, maxAvailable: small }, { requiredKeys: [] })
  .map((l) => (l.maxAvailable !== undefined && l.minAvailable !== undefined && l.maxAvailable < l.minAvailable ? { ...l, maxAvailable: 0 } : l));
const selector = fc.record(
  {
    matchLabels: labels,
    gameServerState: fc.constantFrom('READY', 'ALLOCATED'),
    players: fc.record({ minAvailable: small, maxAvailable: small }).map((p) => ({ minAvailable: Math.min(p.minAvailable, p.maxAvailable), maxAvailable: Math.max(p.minAvailable, p.maxAvailable) })),
    counters: fc.dictionary(mapName, counterSelector, { maxKeys: 3 }),
    lists: fc.dictionary(mapName, listSelector, { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);

const counterActions = fc.dictionary(mapName, fc.oneof(
  fc.record({ action: fc.constantFrom('Increment', 'Decrement'), amount: int64 }),
  fc.record({ capacity: int64 }),
), { maxKeys: 3 });
const listActions = fc.dictionary(mapName, fc.record({ addValues: fc.array(labelName, { maxLength: 4 }), deleteValues: fc.array(labelName, { maxLength: 2 }), capacity: fc.integer({ min: 0, max: 1000 }) }, { requiredKeys: [] }), { maxKeys: 3 });

/** Requests that Agones' rules accept (REST JSON shape). */
export const validRequest = fc.record(
  {
    namespace: dnsLabel,
    scheduling: fc.constantFrom('Packed', 'Distributed'),
    gameServerSelectors: fc.array(selector, { maxLength: 4 }),
    preferredGameServerSelectors: fc.array(selector, { maxLength: 2 }),
    requiredGameServerSelector: selector,
    metadata: fc.record({ labels, annotations: fc.dictionary(labelKey, fc.string({ maxLength: 40 }), { maxKeys: 4 }) }, { requiredKeys: [] }),
    priorities: fc.array(fc.record({ type: fc.constantFrom('Counter', 'List'), key: mapName, order: fc.constantFrom('Ascending', 'Descending') }), { maxLength: 3 }),
    counters: counterActions,
    lists: listActions,
  },
  { requiredKeys: ['namespace'] },
);

/** Valid requests for namespace default that select anything and carry counter and list actions. */
export const actionRequest = fc.record({ namespace: fc.constant('default'), counters: counterActions, lists: listActions, priorities: validRequest.map((r) => r.priorities ?? []) });

/** Any JSON value, including deep and odd ones. */
export const anyJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(null, -1, 1.5, 2 ** 63, -(2 ** 70), '9223372036854775808', '-1', '', ' ', 'READY', 'ALLOCATED', 'Packed', 3, true, [], {}, '\u0000', 'a/b/c', '__proto__', 'constructor'),
);

/** A valid request with one value replaced by anything, somewhere in the tree. */
export const corruptedRequest = fc.tuple(validRequest, anyJson, fc.nat(), fc.string({ maxLength: 12 })).map(([req, value, at, key]) => {
  const paths: (string | number)[][] = [];
  const walk = (o: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (Array.isArray(o)) o.forEach((v, i) => walk(v, [...path, i]));
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, [...path, k]);
  };
  walk(req, []);
  const path = paths[at % paths.length]!;
  const copy = structuredClone(req) as Record<string, unknown>;
  if (path.length === 0) return value;
  let node: any = copy;
  for (const p of path.slice(0, -1)) node = node[p];
  // Replace the value, or (one time in three) add a stray key beside it.
  if (at % 3 === 0 && node && typeof node === 'object' && !Array.isArray(node)) node[key] = value;
  else node[path.at(-1)!] = value;
  return copy;
});

/** The gateway's own annotation keys, in any letter case (Kubernetes compares annotation keys lowercased). */
export const reservedAnnotationKey = fc
  .tuple(fc.constantFrom('allocator-gateway.dev/idempotency-key', 'allocator-gateway.dev/idempotency-request', 'allocator-gateway.dev/cluster'), fc.array(fc.boolean(), { minLength: 48, maxLength: 48 }))
  .map(([key, upper]) => [...key].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

/** A valid request that also tries to set one of the gateway's own annotations (a forgery): always refused. */
export const forgedAnnotationRequest = fc.tuple(validRequest, reservedAnnotationKey, fc.string({ maxLength: 40 }), fc.boolean()).map(([req, key, value, viaMetaPatch]) => {
  const field = viaMetaPatch && req.metadata === undefined ? 'metaPatch' : 'metadata';
  const patch = (field === 'metadata' ? req.metadata : undefined) ?? {};
  return { ...req, [field]: { ...patch, annotations: { ...(patch as { annotations?: object }).annotations, [key]: value } } };
});
