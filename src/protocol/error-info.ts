// google.rpc.Status / google.rpc.ErrorInfo as carried in grpc-status-details-bin.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const root = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: { nested: { Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } } } },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 } as protobuf.IField,
              },
            },
          },
        },
      },
    },
  },
});
const StatusType = root.lookupType('google.rpc.Status');
const ErrorInfoType = root.lookupType('google.rpc.ErrorInfo');
export const ERROR_INFO_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

/** ErrorInfo as it appears in JSON error bodies. */
export interface ErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Reads the ErrorInfo from a gRPC error's trailers, if it carries one. */
export function errorInfoOf(err: { metadata?: grpc.Metadata }): ErrorInfo | null {
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (!(bin instanceof Buffer)) return null;
  try {
    const s = StatusType.decode(bin) as unknown as { details: { type_url: string; value: Uint8Array }[] };
    const any = s.details.find((d) => d.type_url === ERROR_INFO_URL);
    if (!any) return null;
    const info = ErrorInfoType.toObject(ErrorInfoType.decode(any.value), { defaults: true }) as ErrorInfo;
    return info;
  } catch {
    return null;
  }
}

/** Encodes a google.rpc.Status carrying one ErrorInfo. */
export function encodeStatusDetails(code: number, message: string, info: ErrorInfo): Buffer {
  const value = ErrorInfoType.encode(info).finish();
  return Buffer.from(StatusType.encode({ code, message, details: [{ type_url: ERROR_INFO_URL, value }] }).finish());
}
