// How a remote says "no GameServer". agones-allocator answers RESOURCE_EXHAUSTED by default, or the
// code its HTTP_UNALLOCATED_STATUS_CODE maps to (503 → UNAVAILABLE), always with one fixed message
// (pkg/allocation/converters/converter.go); so UNAVAILABLE with that message is a full cluster,
// not an unhealthy endpoint. The gateway's own allocator.unallocatedStatusCode answers the same way.
import { status } from '@grpc/grpc-js';

/** agones-allocator's message for an allocation that found no GameServer (the gateway uses it too). */
export const NO_GAME_SERVER_MESSAGE = 'there is no available GameServer to allocate';

/** True when a remote's status means "no GameServer", whichever unallocated status it is configured with. */
export function unallocatedAnswer(code: number, details: string): boolean {
  return code === status.RESOURCE_EXHAUSTED || (code === status.UNAVAILABLE && details.startsWith(NO_GAME_SERVER_MESSAGE));
}
