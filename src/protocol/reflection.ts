// Descriptors for gRPC server reflection. proto-loader names each generated file after its package
// ("allocation.proto", "google_protobuf.proto") and lists no imports, so reflection clients such as
// grpcurl cannot resolve google.protobuf.Int64Value (grpc/grpc-node#2958). This rewrites the file
// names to their import paths and adds the imports each file needs.
import type { PackageDefinition } from '@grpc/proto-loader';
import descriptor from 'protobufjs/ext/descriptor/index.js';

type Fdp = {
  name?: string;
  package?: string;
  dependency?: string[];
  messageType?: Message[];
  service?: { method?: { inputType?: string; outputType?: string }[] }[];
};
type Field = { name?: string; typeName?: string };
type Message = { name?: string; field?: Field[]; nestedType?: Message[]; options?: { mapEntry?: boolean } };

const FileDescriptorProto = (descriptor as unknown as {
  FileDescriptorProto: { decode(b: Uint8Array): Fdp; encode(d: Fdp): { finish(): Uint8Array }; toObject(d: Fdp): Fdp; fromObject(o: Fdp): Fdp };
}).FileDescriptorProto;

/** Import path of each package's one file. */
export const PROTO_FILES: Readonly<Record<string, string>> = {
  allocation: 'allocation/allocation.proto',
  'gateway.v1': 'gateway/v1/gateway.proto',
  'google.protobuf': 'google/protobuf/wrappers.proto',
};

function referencedTypes(d: Fdp): string[] {
  const out: string[] = [];
  const visit = (m: Message) => {
    for (const f of m.field ?? []) if (f.typeName) out.push(f.typeName);
    for (const n of m.nestedType ?? []) visit(n);
  };
  for (const m of d.messageType ?? []) visit(m);
  for (const s of d.service ?? []) for (const m of s.method ?? []) out.push(m.inputType ?? '', m.outputType ?? '');
  return out;
}

function packageOf(typeName: string): string | undefined {
  // protobufjs writes type names without the leading dot; protoc writes them with it.
  const name = typeName.startsWith('.') ? typeName.slice(1) : typeName;
  return Object.keys(PROTO_FILES)
    .filter((p) => name.startsWith(`${p}.`))
    .sort((a, b) => b.length - a.length)[0];
}

/**
 * protobufjs names a map field's entry type after the field ("Counters"); protoc, and the Go
 * protobuf runtime that grpcurl uses, require "<FieldName>Entry" and reject anything else.
 */
function fixMapEntries(m: Message): void {
  for (const f of m.field ?? []) {
    const entry = m.nestedType?.find((n) => n.options?.mapEntry && n.name === f.typeName);
    if (!entry || !f.name) continue;
    const name = `${f.name.charAt(0).toUpperCase()}${f.name.slice(1).replace(/_(\w)/g, (_, c: string) => c.toUpperCase())}Entry`;
    entry.name = name;
    f.typeName = name;
  }
  for (const n of m.nestedType ?? []) fixMapEntries(n);
}

const rewritten = new WeakMap<Buffer, Buffer>();

function rewrite(b: Buffer): Buffer {
  let out = rewritten.get(b);
  if (out) return out;
  const d = FileDescriptorProto.toObject(FileDescriptorProto.decode(b));
  for (const m of d.messageType ?? []) fixMapEntries(m);
  const own = d.package ?? '';
  const deps = new Set(d.dependency ?? []);
  for (const t of referencedTypes(d)) {
    const pkg = packageOf(t);
    if (pkg && pkg !== own) deps.add(PROTO_FILES[pkg]!);
  }
  out = Buffer.from(FileDescriptorProto.encode(FileDescriptorProto.fromObject({ ...d, name: PROTO_FILES[own] ?? d.name, dependency: [...deps] })).finish());
  rewritten.set(b, out);
  return out;
}

type Descriptors = { fileDescriptorProtos?: Buffer[] };

/**
 * What @grpc/reflection indexes (entries carrying fileDescriptorProtos), with import paths and
 * imports; services contribute the descriptors of their request and response types.
 */
export function reflectionDefinition(...defs: PackageDefinition[]): PackageDefinition {
  const out: Record<string, Descriptors> = {};
  const add = (name: string, d: Descriptors | undefined) => {
    if (Array.isArray(d?.fileDescriptorProtos)) out[name] = { fileDescriptorProtos: d.fileDescriptorProtos.map(rewrite) };
  };
  for (const def of defs) {
    for (const [name, entry] of Object.entries(def)) {
      add(name, entry as Descriptors);
      for (const [method, m] of Object.entries(entry as unknown as Record<string, { requestType?: Descriptors; responseType?: Descriptors }>)) {
        add(`${name}.${method}:request`, m?.requestType);
        add(`${name}.${method}:response`, m?.responseType);
      }
    }
  }
  return out as unknown as PackageDefinition;
}
