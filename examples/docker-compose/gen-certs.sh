#!/bin/sh
# Makes the demo's certificates with openssl: a CA, Envoy's server certificate, and a client
# certificate carrying a SPIFFE identity (URI SAN spiffe://cluster.local/ns/demo/sa/client).
# Usage: gen-certs.sh [OUTPUT_DIR]   (default: ./certs next to this script). Demo keys only.
set -eu
out=${1:-"$(dirname "$0")/certs"}
mkdir -p "$out"
cd "$out"
days=825

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout ca.key -out ca.crt -subj "/O=mesh-authn demo/CN=demo CA" 2>/dev/null

leaf() { # name, subject, extensions
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf server "/O=mesh-authn demo/CN=envoy" \
  "subjectAltName=DNS:envoy,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client "/O=mesh-authn demo/CN=client" \
  "subjectAltName=URI:spiffe://cluster.local/ns/demo/sa/client
extendedKeyUsage=clientAuth"
# Envoy in the container runs as a non-root user: the keys must be readable by it.
chmod 644 ./*.key ./*.crt
rm -f ca.srl
echo "certificates written to $(pwd): ca.crt server.crt server.key client.crt client.key"
