// The request identifier recorded on every GameServer allocated for a request.

/**
 * Annotation carrying the request identifier on every GameServer allocated for a request, local
 * or remote (forwarded in `metadata`, which agones-allocator and gateways write onto the
 * GameServer): an allocation whose reply was lost is found by it. Informational, unlike the
 * gateway's reserved annotations: a caller or a peer gateway may set it, and it is then kept as
 * sent. It differs between attempts of one request, so it is no part of the request's fingerprint.
 */
export const REQUEST_ID_ANNOTATION = 'allocator-gateway.dev/request-id';
