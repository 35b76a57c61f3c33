//! The per-request path natively, one case at a time, for `callgrind` (`make profile`, README
//! "Performance"): where the instructions of a request go, how many allocations it makes and
//! which host calls the adapter would make for it. Not a test: it asserts only that each case
//! gets the verdict it is named for.
//!
//! `request_profile mint DIR` mints the keys and tokens (natively, outside the profile) into
//! DIR; `request_profile run DIR CASE N` runs CASE's request N times inside `measured` (which
//! `callgrind --toggle-collect='*measured*'` counts) after one warm-up pass, and prints the
//! allocations and the host calls per request.
//!
//! A request is what `proxy/http.rs` and `proxy/apply.rs` do with it, host calls replaced by a
//! count: the PeerAuthentication verdict (its property reads), the clock, the header map read
//! in place from the host's buffer (`Request::from_map_bytes` over a copy of the serialized
//! map, as the host allocates one per call), the core's decision with the configuration's
//! verified-token cache, then the mutations (one host call each), the counters (added to the
//! configuration's tally in the VM: the adapter hands it to the host on the root's tick, not
//! per request) or the local reply. `verify_signature` for RS*/ES* is modelled by [`HostModel`]: the
//! VM's part (`host_check`, the ECDSA DER, the argument message) runs, and the verdict is the
//! one `mint` checked with the pure-Rust backend; BoringSSL's own time is not counted here
//! (see `make bench-verify`). PS256 and EdDSA run in the VM in pure Rust, as in Envoy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::Cell;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::Ordering;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mesh_authn::config::FilterConfig;
use mesh_authn::counters::Tally;
use mesh_authn::decision::Decision;
use mesh_authn::jwt::jwks::PublicKey;
use mesh_authn::jwt::token::Alg;
use mesh_authn::jwt::verify::{host_check, PureRust, SignatureVerifier};
use mesh_authn::local_reply::LocalReply;
use mesh_authn::peer_authn::ConnectionProperties;
use mesh_authn::remote_jwks::NoRemoteKeys;
use mesh_authn::request::{encode_map, Request};
use mesh_authn::request_authn::Env;
use serde_json::json;

mod common;
use common::ALLOCS;

const ISS: &str = "https://bench.example.com";
const AUD: &str = "bench";
/// Twice the default cache's 1000 entries, as `make bench`'s distinct-token rows: every
/// request misses, is verified, inserted, and evicts the oldest entry.
const DISTINCT: usize = 2000;

thread_local! {
    /// Host calls the modelled adapter made, by name.
    static HOST_CALLS: Cell<[usize; HOST_CALL_NAMES.len()]> = const { Cell::new([0; HOST_CALL_NAMES.len()]) };
}

const HOST_CALL_NAMES: [&str; 6] = [
    "proxy_get_property",
    "proxy_get_current_time_nanoseconds",
    "proxy_get_header_map_pairs",
    "proxy_call_foreign_function(verify_signature)",
    "proxy_remove/replace/add_header_map_value",
    "proxy_send_local_response",
];

fn host_call(which: usize) {
    HOST_CALLS.with(|c| {
        let mut v = c.get();
        v[which] += 1;
        c.set(v);
    });
}

/// Envoy's `verify_signature` as the VM sees it: the VM builds the argument message (the
/// ECDSA signature as DER included) and makes one host call; the verdict is the one `mint`
/// established with [`PureRust`] for every token. What the host cannot check is verified in
/// the VM, as `proxy::crypto::HostCrypto` does.
struct HostModel;

impl SignatureVerifier for HostModel {
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        match host_check(alg, key, signature) {
            Some(check) => {
                black_box(mesh_authn::jwt::host_crypto::encode_arguments(
                    &check, message,
                ));
                host_call(3);
                true
            }
            None => PureRust.verify(alg, key, message, signature),
        }
    }
}

/// The connection properties, read through (counted) host calls: absent, as on plaintext.
struct Properties;

impl ConnectionProperties for Properties {
    type Error = String;
    fn mtls(&mut self) -> Result<Option<bool>, String> {
        host_call(0);
        Ok(None)
    }
    fn uri_san_peer_certificate(&mut self) -> Result<Option<Vec<u8>>, String> {
        host_call(0);
        Ok(None)
    }
    fn destination_port(&mut self) -> Result<Option<u32>, String> {
        host_call(0);
        Ok(None)
    }
}

/// What Envoy hands a filter for a `wrk` request, serialized as the host serializes it: the
/// token in `Authorization`, or as the `session` cookie between two others.
fn wire(token: &str, cookie: bool) -> Vec<u8> {
    let auth = format!("Bearer {token}");
    let cookies = format!("theme=dark; session={token}; lang=en");
    let mut h = common::WRK_HEADERS.to_vec();
    if cookie {
        h.push(("cookie", &cookies));
    } else if !token.is_empty() {
        h.push(("authorization", &auth));
    }
    encode_map(&h)
}

/// One request through the modelled adapter (`proxy/http.rs#on_http_request_headers`,
/// `proxy/apply.rs#decide_current`). Returns whether it was allowed.
fn request(config: &FilterConfig, tally: &Tally, wire: &[u8], now: u64) -> bool {
    if config.peer_authn.verdict(&mut Properties) != Ok(mesh_authn::peer_authn::PeerVerdict::Allow)
    {
        panic!("the benchmark's configuration has no PeerAuthentication");
    }
    host_call(1);
    host_call(2);
    let request = Request::from_map_bytes(black_box(wire.to_vec())).unwrap();
    let env = Env {
        now,
        crypto: &HostModel,
        remote: &NoRemoteKeys,
        cache: Some(&config.token_cache),
    };
    let (decision, attribution) = config.request_authn.authenticate_attributed(&request, &env);
    for counter in mesh_authn::counters::for_decision(&decision, &attribution) {
        tally.add(counter);
    }
    match &decision {
        Decision::Allow(m) => {
            let mutations = m.remove_headers.len()
                + usize::from(m.path.is_some())
                + m.set_headers.len()
                + m.add_headers.len();
            for _ in 0..mutations {
                host_call(4);
            }
            true
        }
        Decision::Deny(status) => {
            let reply = LocalReply::jwt_denied(*status, &request);
            let headers: Vec<(&str, &[u8])> = reply
                .headers
                .iter()
                .map(|(n, v)| (*n, v.as_slice()))
                .collect();
            black_box(encode_map(&headers));
            host_call(5);
            false
        }
        Decision::NeedKeys(_) => panic!("inline keys never wait"),
    }
}

#[inline(never)]
fn measured(
    config: &FilterConfig,
    tally: &Tally,
    wires: &[Vec<u8>],
    n: usize,
    now: u64,
    allow: bool,
) {
    for i in 0..n {
        let w = &wires[i % wires.len()];
        assert_eq!(black_box(request(config, tally, w, now)), allow);
    }
}

/// The rule: the default locations, or only the `session` cookie.
fn config_yaml(jwks: &str, cookie: bool) -> String {
    let from = if cookie {
        "      fromCookies: [session]\n"
    } else {
        ""
    };
    format!(
        "workload: {{namespace: foo}}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: \
         RequestAuthentication\n  metadata: {{name: a, namespace: foo}}\n  spec:\n    jwtRules:\n    \
         - issuer: {ISS}\n      audiences: [{AUD}]\n{from}      jwks: {}\n",
        serde_json::to_string(jwks).unwrap()
    )
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(alg: &str, kid: &str, n: usize, now: u64, ttl: i64) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    let payload = json!({
        "iss": ISS, "sub": "tester@example.com", "aud": AUD,
        "iat": now, "exp": now as i64 + ttl, "jti": format!("bench-{n}"),
    });
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

/// Keys and tokens into `dir`: the configuration, and one file of tokens per case.
fn mint(dir: &Path) {
    use rsa::traits::PublicKeyParts as _;
    use sha2::{Digest, Sha256};
    std::fs::create_dir_all(dir).unwrap();
    let now = now();
    let mut rng = rand::thread_rng();
    let rsa = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let ec = p256::ecdsa::SigningKey::from_slice(&[0x5a; 32]).unwrap();
    let ed = ed25519_dalek::SigningKey::from_bytes(&[0x17; 32]);
    let point = ec.verifying_key().to_sec1_point(false);
    let point = point.as_bytes();
    let (rsa_n, rsa_e) = (b64(&rsa.n().to_bytes_be()), b64(&rsa.e().to_bytes_be()));
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "n": rsa_n, "e": rsa_e},
        {"kty": "EC", "kid": "ec-1", "alg": "ES256", "crv": "P-256",
         "x": b64(&point[1..33]), "y": b64(&point[33..65])},
        {"kty": "RSA", "kid": "ps-1", "alg": "PS256", "n": rsa_n, "e": rsa_e},
        {"kty": "OKP", "kid": "ed-1", "alg": "EdDSA", "crv": "Ed25519",
         "x": b64(ed.verifying_key().as_bytes())},
    ]})
    .to_string();
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    let sign = |alg: &str, n: usize, ttl: i64| -> String {
        let kid = match alg {
            "RS256" => "rsa-1",
            "ES256" => "ec-1",
            "PS256" => "ps-1",
            _ => "ed-1",
        };
        let input = signing_input(alg, kid, n, now, ttl);
        let digest = Sha256::digest(input.as_bytes());
        let sig = match alg {
            "RS256" => rsa
                .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                .unwrap(),
            "PS256" => rsa
                .sign_with_rng(&mut rand::thread_rng(), rsa::Pss::new::<Sha256>(), &digest)
                .unwrap(),
            "ES256" => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = ec.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            _ => {
                use ed25519_dalek::Signer as _;
                ed.sign(input.as_bytes()).to_bytes().to_vec()
            }
        };
        format!("{input}.{}", b64(&sig))
    };
    // Every token checked once with the pure-Rust backend: `HostModel` answers what it did.
    let config = FilterConfig::parse(config_yaml(&jwks, false).as_bytes()).unwrap();
    let env = Env {
        now,
        crypto: &PureRust,
        remote: &NoRemoteKeys,
        cache: None,
    };
    for (file, alg, count, ttl, allowed) in [
        ("RS256", "RS256", DISTINCT, 86_400, true),
        ("ES256", "ES256", DISTINCT, 86_400, true),
        ("PS256", "PS256", DISTINCT, 86_400, true),
        ("EdDSA", "EdDSA", DISTINCT, 86_400, true),
        ("expired", "RS256", 1, -3_600, false),
    ] {
        let tokens: Vec<String> = (0..count).map(|n| sign(alg, n, ttl)).collect();
        for t in &tokens {
            let request = Request::from_map_bytes(wire(t, false)).unwrap();
            let allowed_here = matches!(
                config.request_authn.authenticate(&request, &env),
                Decision::Allow(_)
            );
            assert_eq!(allowed_here, allowed, "{file}: {t}");
        }
        std::fs::write(dir.join(format!("{file}.txt")), tokens.join("\n") + "\n").unwrap();
    }
    std::fs::write(dir.join("now"), now.to_string()).unwrap();
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The cases: name, token file (`None`: no token), how many distinct tokens, allowed.
const CASES: [(&str, Option<&str>, usize, bool); 9] = [
    ("none", None, 1, true),
    ("hit-RS256", Some("RS256"), 1, true),
    ("hit-ES256", Some("ES256"), 1, true),
    ("distinct-RS256", Some("RS256"), DISTINCT, true),
    ("distinct-ES256", Some("ES256"), DISTINCT, true),
    ("distinct-PS256", Some("PS256"), DISTINCT, true),
    ("distinct-EdDSA", Some("EdDSA"), DISTINCT, true),
    ("expired", Some("expired"), 1, false),
    // The same cache hit with the token in a cookie: `cookie_in_segment` on extraction and
    // on the rewrite of `Cookie`.
    ("hit-RS256-cookie", Some("RS256"), 1, true),
];

fn run(dir: &Path, case: &str, n: usize) {
    let (_, file, distinct, allow) = CASES
        .iter()
        .find(|c| c.0 == case)
        .unwrap_or_else(|| panic!("no case {case}: one of {:?}", CASES.map(|c| c.0)));
    let cookie = case.ends_with("-cookie");
    let jwks = std::fs::read_to_string(dir.join("jwks.json")).unwrap();
    let config = FilterConfig::parse(config_yaml(&jwks, cookie).as_bytes()).unwrap();
    let now: u64 = std::fs::read_to_string(dir.join("now"))
        .unwrap()
        .parse()
        .unwrap();
    let wires: Vec<Vec<u8>> = match file {
        None => vec![wire("", false)],
        Some(f) => std::fs::read_to_string(dir.join(format!("{f}.txt")))
            .unwrap()
            .lines()
            .take(*distinct)
            .map(|t| wire(t, cookie))
            .collect(),
    };
    // Warm-up (not counted): a whole pass, so the cache is in its steady state (full, for
    // distinct tokens).
    let issuers = config.request_authn.providers().iter();
    let tally = Tally::new(mesh_authn::counters::names(issuers.map(|p| p.issuer.as_str())).len());
    for w in &wires {
        assert_eq!(request(&config, &tally, w, now), *allow);
    }
    HOST_CALLS.with(|c| c.set([0; HOST_CALL_NAMES.len()]));
    let a0 = ALLOCS.load(Ordering::Relaxed);
    measured(&config, &tally, &wires, n, now, *allow);
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / n as f64;
    let calls = HOST_CALLS.with(Cell::get);
    let total: usize = calls.iter().sum();
    println!("case {case}: {n} requests");
    println!("allocations per request: {allocs:.1}");
    println!("host calls per request: {:.1}", total as f64 / n as f64);
    for (name, count) in HOST_CALL_NAMES.iter().zip(calls) {
        if count > 0 {
            println!("  {name}: {:.1}", count as f64 / n as f64);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["mint", dir] => mint(Path::new(dir)),
        ["run", dir, case, n] => run(Path::new(dir), case, n.parse().unwrap()),
        ["cases"] => {
            for c in CASES {
                println!("{}", c.0);
            }
        }
        // `cargo test --all-targets` and `cargo bench` run bench targets: nothing to do there.
        _ => {}
    }
}
