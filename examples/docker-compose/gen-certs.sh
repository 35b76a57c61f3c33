#!/bin/sh
# Makes the demo's certificates with openssl: a CA, Envoy's server certificate, and a client
# certificate carrying a SPIFFE identity (URI SAN spiffe://cluster.local/ns/demo/sa/client).
# Usage: gen-certs.sh [OUTPUT_DIR]   (default: ./certs next to this script). Demo keys only.
#
# OUTPUT_DIR is mounted into the Envoy container. The CA key never goes there: it lives in a
# temporary directory and is deleted once the two certificates are signed. No key is
# world-readable: client.key is the caller's alone (0600, for curl on the host); server.key is
# 0640 and readable by uid/gid 101, the user Envoy runs as in the envoyproxy/envoy image
# (group 101 when chgrp is allowed, as root; else an ACL for uid 101 with setfacl).
set -eu
out=${1:-"$(dirname "$0")/certs"}
mkdir -p "$out"
cd "$out"
chmod 755 .   # mounted: the directory must be searchable by uid 101
umask 077
days=825
ca_dir=$(mktemp -d)
trap 'rm -rf "$ca_dir"' EXIT
rm -f ca.key ca.srl

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout "$ca_dir/ca.key" -out ca.crt -subj "/O=mesh-authn demo/CN=demo CA" 2>/dev/null

leaf() { # name, subject, extensions
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey "$ca_dir/ca.key" -CAcreateserial \
    -CAserial "$ca_dir/ca.srl" -sha256 -days "$days" -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf server "/O=mesh-authn demo/CN=envoy" \
  "subjectAltName=DNS:envoy,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client "/O=mesh-authn demo/CN=client" \
  "subjectAltName=URI:spiffe://cluster.local/ns/demo/sa/client
extendedKeyUsage=clientAuth"
chmod 644 ca.crt server.crt client.crt
chmod 600 client.key
chmod 640 server.key
if ! chgrp 101 server.key 2>/dev/null; then
  if ! { command -v setfacl >/dev/null && setfacl -m u:101:r server.key; }; then
    echo "gen-certs.sh: cannot make $(pwd)/server.key readable by uid 101 (Envoy in the container)" >&2
    echo "  without making it world-readable: run  sudo chgrp 101 $(pwd)/server.key" >&2
    echo "  (or install setfacl, Debian package acl, and run this script again)" >&2
    exit 1
  fi
fi
echo "certificates written to $(pwd): ca.crt server.crt server.key client.crt client.key"
