// Annotations only the gateway writes. A request may not set them: they tie a GameServer to an
// idempotency key and name the cluster that served, so a forged one would let one caller plant
// an allocation that another caller's key returns, or spoof where an allocation came from.

/** On a locally allocated GameServer: the hashed idempotency key that allocated it. */
export const IDEMPOTENCY_ANNOTATION = 'allocator-gateway.dev/idempotency-key';
/** Beside it: the fingerprint of the request that key was used with (a different request is a conflict). */
export const IDEMPOTENCY_REQUEST_ANNOTATION = 'allocator-gateway.dev/idempotency-request';
/** On a response (and a local GameServer): the policy's clusterName that served. */
export const CLUSTER_ANNOTATION = 'allocator-gateway.dev/cluster';

const RESERVED: ReadonlySet<string> = new Set([IDEMPOTENCY_ANNOTATION, IDEMPOTENCY_REQUEST_ANNOTATION, CLUSTER_ANNOTATION]);

/** Whether `key` is one of the gateway's own annotations (compared as Kubernetes does: case-insensitively). */
export function isReservedAnnotation(key: string): boolean {
  return RESERVED.has(key.toLowerCase());
}

/** `annotations` without the gateway's own: they describe an earlier allocation, not the next one. */
export function withoutReserved(annotations: Readonly<Record<string, string>>): Record<string, string> {
  // fromEntries defines own properties, so a key such as "__proto__" stays a plain key.
  return Object.fromEntries(Object.entries(annotations).filter(([k]) => !RESERVED.has(k)));
}
