#!/usr/bin/env node
// Sends one Allocate to a gateway (or agones-allocator) and prints the response as JSON.
//   npm run allocate -- --address localhost:8443 --ca certs/dev/ca/ca.crt \
//     --cert certs/dev/client/tls.crt --key certs/dev/client/tls.key --request '{"namespace":"default"}'
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AllocatorError, createAllocatorClient, type AllocationRequest } from '../client/index.ts';
import { ResponseType } from '../protocol/proto.ts';
import { toJson } from '../protocol/proto-json.ts';

const USAGE = `usage: allocate --address HOST:PORT --ca FILE --cert FILE --key FILE
                [--namespace NS] [--request JSON | --request-file FILE]
                [--deadline-ms N] [--idempotency-key KEY] [--server-name NAME]
The request is the proto3 JSON form of allocation.AllocationRequest; --namespace overrides its namespace.
Exit status: 0 allocated, 1 refused (the gRPC status is printed as JSON on stderr), 2 bad usage.`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        address: { type: 'string', default: 'localhost:8443' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        namespace: { type: 'string' },
        request: { type: 'string' },
        'request-file': { type: 'string' },
        'deadline-ms': { type: 'string', default: '10000' },
        'idempotency-key': { type: 'string' },
        'server-name': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    return fail((err as Error).message);
  }
})();

if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!values.ca || !values.cert || !values.key) fail('--ca, --cert and --key are required (mutual TLS)');

const read = (path: string) => {
  try {
    return readFileSync(path);
  } catch (err) {
    return fail(`cannot read ${path}: ${(err as Error).message}`);
  }
};

let request: AllocationRequest = {};
try {
  const text = values['request-file'] ? read(values['request-file']).toString() : values.request;
  if (text) request = JSON.parse(text) as AllocationRequest;
} catch (err) {
  fail(`--request is not valid JSON: ${(err as Error).message}`);
}
if (values.namespace) request.namespace = values.namespace;
if (!request.namespace) request.namespace = 'default';

const deadlineMs = Number(values['deadline-ms']);
if (!Number.isInteger(deadlineMs) || deadlineMs <= 0) fail('--deadline-ms must be a positive integer');

const client = createAllocatorClient({
  address: values.address,
  ca: read(values.ca),
  cert: read(values.cert),
  key: read(values.key),
  ...(values['server-name'] ? { serverName: values['server-name'] } : {}),
});
try {
  const response = await client.allocate(request, {
    deadline: deadlineMs,
    ...(values['idempotency-key'] ? { idempotencyKey: values['idempotency-key'] } : {}),
  });
  // Printed in the proto3 JSON form the REST door returns, so both outputs compare.
  process.stdout.write(`${JSON.stringify(toJson(response as unknown as Record<string, unknown>, ResponseType), null, 2)}\n`);
} catch (err) {
  if (!(err instanceof AllocatorError)) throw err;
  process.stderr.write(`${JSON.stringify({ code: err.code, codeName: err.codeName, message: err.details, errorInfo: err.errorInfo }, null, 2)}\n`);
  process.exitCode = 1;
} finally {
  client.close();
}
