#!/usr/bin/env python3
"""A tiny OIDC-style token issuer for the mesh-authn demo, Python standard library only.

At start it makes a fresh RSA-2048 key (pure Python, a few seconds), then serves on PORT:
  GET /.well-known/openid-configuration   {"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks.json"}
  GET /jwks.json                          the public key as a JWKS (RS256; kid: the key's RFC 7638
                                          thumbprint, so a restart with a new key is a new kid)
  GET /token?sub=alice&aud=demo&ttl=3600  a signed RS256 JWT (ttl may be negative: expired)
Environment: ISSUER (default http://issuer:8080), PORT (default 8080), BIND (default 0.0.0.0).
A demo, not an identity provider: anyone who can reach /token gets a token.
"""
import base64
import hashlib
import json
import os
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ISSUER = os.environ.get("ISSUER", "http://issuer:8080")
PORT = int(os.environ.get("PORT", "8080"))
BIND = os.environ.get("BIND", "0.0.0.0")
SMALL_PRIMES = [p for p in range(3, 2000) if all(p % q for q in range(2, int(p**0.5) + 1))]


def is_probable_prime(n, rounds=40):
    if any(n % p == 0 for p in SMALL_PRIMES):
        return n in SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def random_prime(bits):
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if is_probable_prime(candidate):
            return candidate


def make_key(bits=2048, e=65537):
    while True:
        p, q = random_prime(bits // 2), random_prime(bits // 2)
        phi = (p - 1) * (q - 1)
        n = p * q
        if p != q and n.bit_length() == bits and phi % e != 0:
            return n, e, pow(e, -1, phi)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(value):
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


# RFC 8017 §9.2: EMSA-PKCS1-v1_5 with SHA-256's DigestInfo prefix.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def sign_rs256(message, n, d):
    k = (n.bit_length() + 7) // 8
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def rfc7638_thumbprint(n, e):
    """RFC 7638 §3: SHA-256 over the required members (e, kty, n for RSA) in lexicographic
    order, no whitespace, base64url without padding."""
    members = {"e": b64url(int_bytes(e)), "kty": "RSA", "n": b64url(int_bytes(n))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


N, E, D = make_key()
# A relying party that sees an unknown kid refetches the key set (mesh-authn does): a new key
# after a restart is picked up at the first token signed with it.
KID = rfc7638_thumbprint(N, E)
JWKS = {"keys": [{"kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig",
                  "n": b64url(int_bytes(N)), "e": b64url(int_bytes(E))}]}


def mint(sub, aud, ttl):
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": KID}
    claims = {"iss": ISSUER, "sub": sub, "aud": aud, "iat": now, "exp": now + ttl}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    return signing_input + "." + b64url(sign_rs256(signing_input.encode(), N, D))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/jwks.json":
            self.reply(200, "application/json", json.dumps(JWKS))
        elif url.path == "/.well-known/openid-configuration":
            doc = {"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks.json"}
            self.reply(200, "application/json", json.dumps(doc))
        elif url.path == "/token":
            try:
                ttl = int(query.get("ttl", "3600"))
            except ValueError:
                return self.reply(400, "text/plain", "ttl must be an integer\n")
            token = mint(query.get("sub", "alice"), query.get("aud", "demo"), ttl)
            self.reply(200, "text/plain", token + "\n")
        else:
            self.reply(404, "text/plain", "not found\n")

    def reply(self, code, content_type, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("issuer:", fmt % args, flush=True)


if __name__ == "__main__":
    server = ThreadingHTTPServer((BIND, PORT), Handler)
    print(f"issuer {ISSUER} listening on {BIND}:{server.server_address[1]}", flush=True)
    server.serve_forever()
