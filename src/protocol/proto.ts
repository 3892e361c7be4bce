// Loads the wire contract once: the gRPC service definition (proto-loader) and the same
// schema as protobufjs reflection (for the REST form's proto3 JSON mapping).
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** Folder holding allocation/allocation.proto. */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
export const ALLOCATION_PROTO = 'allocation/allocation.proto';

/** proto-loader options: the shape src/allocation/wire.ts describes. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export const packageDefinition = protoLoader.loadSync(ALLOCATION_PROTO, LOADER_OPTIONS);

/** The Allocate method's definition (path, (de)serializers). */
export const allocateMethod = (packageDefinition['allocation.AllocationService'] as protoLoader.ServiceDefinition).Allocate!;

/** The same schema as protobufjs reflection types. */
export const protoRoot: protobuf.Root = (() => {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : `${PROTO_DIR}${target}`);
  // The gateway's own service too, so its requests get the same bounded decoding.
  root.loadSync([ALLOCATION_PROTO, 'gateway/v1/gateway.proto'], { keepCase: true });
  root.resolveAll();
  return root;
})();

export const RequestType = protoRoot.lookupType('allocation.AllocationRequest');
export const ResponseType = protoRoot.lookupType('allocation.AllocationResponse');
