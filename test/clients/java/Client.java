// Allocates a GameServer through the gateway over mTLS and prints the response as JSON.
// Stubs: `npm run gen` (gen/java); runtime jars: pom.xml. Build: see test/clients/build.sh.
import allocation.Allocation.AllocationRequest;
import allocation.Allocation.AllocationResponse;
import allocation.Allocation.GameServerSelector;
import allocation.Allocation.MetaPatch;
import allocation.AllocationServiceGrpc;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

public class Client {
  static final Map<String, String> flags = new HashMap<>();

  // --name value, else the environment variable, else def.
  static String flag(String name, String env, String def) {
    String v = flags.getOrDefault(name, env == null ? null : System.getenv(env));
    return v == null ? def : v;
  }

  // "k=v" -> {k: v}; "" -> {}.
  static Map<String, String> kv(String s) {
    int eq = s.indexOf('=');
    return eq < 0 ? Map.of() : Map.of(s.substring(0, eq), s.substring(eq + 1));
  }

  public static void main(String[] args) throws Exception {
    for (int i = 0; i + 1 < args.length; i += 2) flags.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    TlsChannelCredentials.Builder tls =
        TlsChannelCredentials.newBuilder().trustManager(new File(flag("ca", "ALLOCATOR_CA", "")));
    String cert = flag("cert", "ALLOCATOR_CERT", "");
    if (!cert.isEmpty()) tls.keyManager(new File(cert), new File(flag("key", "ALLOCATOR_KEY", "")));
    ManagedChannel channel =
        Grpc.newChannelBuilder(flag("addr", "ALLOCATOR_ADDR", "127.0.0.1:8443"), tls.build()).build();
    try {
      AllocationResponse resp = AllocationServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(10, TimeUnit.SECONDS)
          .allocate(AllocationRequest.newBuilder()
              .setNamespace(flag("namespace", null, "default"))
              .addGameServerSelectors(GameServerSelector.newBuilder().putAllMatchLabels(kv(flag("selector", null, ""))))
              .setMetadata(MetaPatch.newBuilder().putAllLabels(kv(flag("label", null, ""))))
              .build());
      System.out.println(JsonFormat.printer().omittingInsignificantWhitespace().print(resp));
    } catch (StatusRuntimeException e) {
      System.err.println("Allocate: " + e.getStatus());
      System.exit(1);
    } finally {
      channel.shutdownNow();
    }
  }
}
