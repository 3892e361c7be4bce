// A GatewayService (GetCapacity, ExplainRoute) client for tests: typed calls and raw-bytes calls
// over the same mTLS channel, so a test can send what no well-behaved client would.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { gatewayServiceDefinition } from '../../src/remote/gateway-proto.ts';
import type { Pair, TestCerts } from './certs.ts';

export interface CallResult<T> {
  readonly code: string;
  readonly details: string;
  readonly response?: T;
}

export interface GatewayServiceClient {
  getCapacity(req: object, deadlineMs?: number): Promise<CallResult<any>>;
  explainRoute(req: object, deadlineMs?: number): Promise<CallResult<any>>;
  /** Sends raw bytes as the request of `method` ('GetCapacity' | 'ExplainRoute'). */
  raw(method: string, bytes: Buffer, deadlineMs?: number): Promise<CallResult<Buffer>>;
  close(): void;
}

type Callback = (e: grpc.ServiceError | null, r?: any) => void;

export function gatewayServiceClient(address: string, certs: TestCerts, pair: Pair = certs.client): GatewayServiceClient {
  const creds = grpc.credentials.createSsl(readFileSync(certs.caFile), readFileSync(pair.keyFile), readFileSync(pair.certFile));
  const options = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.max_send_message_length': 64 << 20 };
  const Ctor = grpc.makeGenericClientConstructor(gatewayServiceDefinition as never, 'GatewayService');
  const typed = new Ctor(address, creds, options) as unknown as Record<string, (req: object, opts: object, cb: Callback) => void> & grpc.Client;
  const raw = new grpc.Client(address, creds, options);
  const settle = <T>(resolve: (r: CallResult<T>) => void) => (err: grpc.ServiceError | null, res?: T) =>
    resolve(err ? { code: grpc.status[err.code]!, details: err.details } : { code: 'OK', details: '', response: res! });
  const call = (method: string) => (req: object, deadlineMs = 10_000) =>
    new Promise<CallResult<any>>((resolve) => typed[method]!(req, { deadline: Date.now() + deadlineMs }, settle(resolve)));
  return {
    getCapacity: call('GetCapacity'),
    explainRoute: call('ExplainRoute'),
    raw: (method, bytes, deadlineMs = 30_000) =>
      new Promise((resolve) =>
        raw.makeUnaryRequest(`/gateway.v1.GatewayService/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + deadlineMs }, settle(resolve)),
      ),
    close() {
      typed.close();
      raw.close();
    },
  };
}
