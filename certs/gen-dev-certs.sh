#!/usr/bin/env bash
# Generates a development PKI for the gateway (never for production):
#   <out>/ca/ca.{crt,key}           dev CA
#   <out>/server/tls.{crt,key}      server cert, SANs localhost and 127.0.0.1 (serverAuth)
#   <out>/client/tls.{crt,key}      client cert, CN dev-client (clientAuth)
#   <out>/client-ca/ca.crt          the directory the gateway reads client CAs from
# File names follow cert-manager's Secret layout (tls.crt, tls.key, ca.crt).
# Usage: certs/gen-dev-certs.sh [--if-missing] [--client-name NAME] [OUT_DIR]   (OUT_DIR defaults to certs/dev)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if_missing=0
client=dev-client
out="$here/dev"
while [ $# -gt 0 ]; do
  case "$1" in
    --if-missing) if_missing=1 ;;
    --client-name) client=$2; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) out=$1 ;;
  esac
  shift
done
if [ "$if_missing" = 1 ] && [ -s "$out/server/tls.crt" ] && [ -s "$out/client/tls.crt" ]; then exit 0; fi
command -v openssl >/dev/null || { echo "openssl is required to generate dev certificates" >&2; exit 1; }
mkdir -p "$out/ca" "$out/server" "$out/client" "$out/client-ca"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign DIR CN EXTENSIONS: a leaf in DIR/tls.{crt,key}, signed by the dev CA, valid 825 days
sign() {
  key "$1/tls.key"
  openssl req -new -key "$1/tls.key" -subj "/CN=$2" -out "$1/tls.csr" 2>/dev/null
  printf '%b' "$3" > "$1/ext.cnf"
  openssl x509 -req -in "$1/tls.csr" -CA "$out/ca/ca.crt" -CAkey "$out/ca/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$1/ext.cnf" -out "$1/tls.crt" 2>/dev/null
  cp "$out/ca/ca.crt" "$1/ca.crt"
  rm -f "$1/tls.csr" "$1/ext.cnf"
}

key "$out/ca/ca.key"
openssl req -x509 -new -key "$out/ca/ca.key" -subj "/CN=allocator-gateway dev CA" -days 3650 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$out/ca/ca.crt" 2>/dev/null
sign "$out/server" localhost \
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
sign "$out/client" "$client" \
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://allocator-gateway/$client,DNS:$client\n"
cp "$out/ca/ca.crt" "$out/client-ca/ca.crt"
rm -f "$out/ca/ca.srl"
chmod 644 "$out"/*/*.crt
echo "dev certificates written to $out"
