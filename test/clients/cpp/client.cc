// Allocates a GameServer through the gateway over mTLS and prints the response as JSON.
// Stubs: `npm run gen` (gen/cpp). Build: see test/clients/build.sh (g++ + pkg-config grpc++).
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "allocation/allocation.grpc.pb.h"

// --name value, else the environment variable, else def.
static std::string Flag(int argc, char** argv, const std::string& name, const char* env, std::string def) {
  for (int i = 1; i + 1 < argc; i++)
    if (argv[i] == "--" + name) return argv[i + 1];
  const char* v = env ? std::getenv(env) : nullptr;
  return v ? v : def;
}

static std::string Read(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  if (!in) { std::cerr << "cannot read " << path << "\n"; std::exit(1); }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "k=v" into map; "" adds nothing.
static void Put(const std::string& kv, google::protobuf::Map<std::string, std::string>* map) {
  auto eq = kv.find('=');
  if (eq != std::string::npos) (*map)[kv.substr(0, eq)] = kv.substr(eq + 1);
}

int main(int argc, char** argv) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = Read(Flag(argc, argv, "ca", "ALLOCATOR_CA", ""));
  tls.pem_cert_chain = Read(Flag(argc, argv, "cert", "ALLOCATOR_CERT", ""));
  tls.pem_private_key = Read(Flag(argc, argv, "key", "ALLOCATOR_KEY", ""));
  auto channel = grpc::CreateChannel(Flag(argc, argv, "addr", "ALLOCATOR_ADDR", "127.0.0.1:8443"),
                                     grpc::SslCredentials(tls));

  allocation::AllocationRequest req;
  req.set_namespace_(Flag(argc, argv, "namespace", nullptr, "default"));  // namespace_: C++ keyword
  Put(Flag(argc, argv, "selector", nullptr, ""), req.add_gameserverselectors()->mutable_matchlabels());
  Put(Flag(argc, argv, "label", nullptr, ""), req.mutable_metadata()->mutable_labels());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  allocation::AllocationResponse resp;
  grpc::Status status = allocation::AllocationService::NewStub(channel)->Allocate(&ctx, req, &resp);
  if (!status.ok()) {
    std::cerr << "Allocate: " << status.error_code() << ": " << status.error_message() << "\n";
    return 1;
  }
  std::string json;
  google::protobuf::util::MessageToJsonString(resp, &json);
  std::cout << json << "\n";
}
