// Allocates a GameServer through the gateway over mTLS and prints the response as JSON.
// Stubs come from our proto (gen/go, `npm run gen`), wire-identical to Agones' Go client.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	pb "allocator-gateway/gen/go/allocation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// kv turns "k=v" into a one-entry map ("" gives none).
func kv(s string) map[string]string {
	if k, v, ok := strings.Cut(s, "="); ok {
		return map[string]string{k: v}
	}
	return nil
}

func main() {
	addr := flag.String("addr", env("ALLOCATOR_ADDR", "127.0.0.1:8443"), "gateway host:port")
	ca := flag.String("ca", os.Getenv("ALLOCATOR_CA"), "CA certificate that signed the gateway's (PEM)")
	cert := flag.String("cert", os.Getenv("ALLOCATOR_CERT"), "client certificate (PEM)")
	key := flag.String("key", os.Getenv("ALLOCATOR_KEY"), "client private key (PEM)")
	namespace := flag.String("namespace", "default", "namespace to allocate in")
	selector := flag.String("selector", "", "matchLabels of the GameServer selector, k=v")
	label := flag.String("label", "", "label to add to the allocated GameServer, k=v")
	flag.Parse()

	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(*ca); err != nil || !pool.AppendCertsFromPEM(pem) {
		log.Fatalf("CA %q: unreadable or not PEM: %v", *ca, err)
	}
	config := &tls.Config{RootCAs: pool}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatalf("client certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	if err != nil {
		log.Fatalf("dial %s: %v", *addr, err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := pb.NewAllocationServiceClient(conn).Allocate(ctx, &pb.AllocationRequest{
		Namespace:           *namespace,
		GameServerSelectors: []*pb.GameServerSelector{{MatchLabels: kv(*selector)}},
		Metadata:            &pb.MetaPatch{Labels: kv(*label)},
	})
	if err != nil {
		log.Fatalf("Allocate: %v", err)
	}
	out, _ := protojson.Marshal(resp)
	fmt.Println(string(out))
}
