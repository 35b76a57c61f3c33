//! Allocations (and time) per request on the hot paths, natively, with a counting global
//! allocator: the adapter's header decoding (the bytes Envoy hands over to a `Request`, as it
//! was — `request::decode_map` then `Request::new` — and as it is now,
//! `Request::from_map_bytes`) and `RequestAuthn::authenticate_attributed` for a
//! request without a token, with a token in the verified-token cache, with a token verified
//! in full (pure-Rust backend, cache off) and with an invalid token. Not a test: `make
//! bench-alloc` runs it and prints a table.
//!
//! Tokens and keys are Envoy's `jwt_authn` test fixtures (`tests/fixtures/`); the request's
//! headers are what Envoy passes a filter for a `wrk` request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mesh_authn::config::FilterConfig;
use mesh_authn::jwt::verify::PureRust;
use mesh_authn::remote_jwks::NoRemoteKeys;
use mesh_authn::request::Request;
use mesh_authn::request_authn::Env;
use serde_json::Value;

mod common;
use common::ALLOCS;
use common::BYTES;

/// `(allocations, bytes, ns)` per call of `f`, averaged over `n` calls.
fn measure(n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    f();
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    let (a1, b1) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64, ns)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` runs bench targets: nothing to do there.
    }
    let fixture: Value = serde_json::from_str(include_str!(
        "../tests/fixtures/envoy_jwt_authn_test_common.json"
    ))
    .unwrap();
    let jwks = fixture["public_key_jwks"].as_str().unwrap();
    let good = fixture["tokens"]["GoodToken"].as_str().unwrap();
    let expired = fixture["tokens"]["ExpiredToken"].as_str().unwrap();
    let yaml = format!(
        "workload: {{namespace: foo}}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: \
         RequestAuthentication\n  metadata: {{name: a, namespace: foo}}\n  spec:\n    jwtRules:\n    \
         - issuer: https://example.com\n      audiences: [example_service]\n      jwks: {}\n",
        serde_json::to_string(jwks).unwrap()
    );
    let config = FilterConfig::parse(yaml.as_bytes()).unwrap();
    let now = 1_700_000_000;
    let cached = Env {
        now,
        crypto: &PureRust,
        remote: &NoRemoteKeys,
        cache: Some(&config.token_cache),
    };
    let uncached = Env {
        cache: None,
        ..cached
    };

    fn headers(auth: Option<&str>) -> Vec<(&str, &str)> {
        let mut h = common::WRK_HEADERS.to_vec();
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        h
    }
    let bearer_good = format!("Bearer {good}");
    let bearer_bad = format!("Bearer {expired}");

    println!("| per request | allocations | bytes allocated | time |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, (a, b, ns): (f64, f64, f64)| {
        println!("| {name} | {a:.1} | {b:.0} | {:.2} µs |", ns / 1000.0);
    };

    let wire = mesh_authn::request::encode_map(&headers(Some(&bearer_good)));
    // The copy of `wire` stands for the buffer the host allocates in the VM for every call.
    row(
        "adapter: Envoy's header map (7 headers) to a Request, as it was: a copy per header",
        measure(100_000, || {
            let host_buffer = black_box(wire.clone());
            let pairs = mesh_authn::request::decode_map(&host_buffer).unwrap();
            black_box(Request::new(pairs));
        }),
    );
    row(
        "adapter: Envoy's header map (7 headers) to a Request, read in place (now)",
        measure(100_000, || {
            let host_buffer = black_box(wire.clone());
            black_box(Request::from_map_bytes(host_buffer).unwrap());
        }),
    );
    for (name, auth, env, n) in [
        ("core: no token", None, &cached, 100_000),
        (
            "core: valid RS256 token, cache hit",
            Some(&bearer_good),
            &cached,
            100_000,
        ),
        (
            "core: valid RS256 token, verified (cache off, pure Rust)",
            Some(&bearer_good),
            &uncached,
            200,
        ),
        (
            "core: expired token (refused before the signature)",
            Some(&bearer_bad),
            &cached,
            100_000,
        ),
    ] {
        let pairs = headers(auth.map(String::as_str));
        let request = Request::from_pairs(&pairs);
        row(
            name,
            measure(n, || {
                black_box(
                    config
                        .request_authn
                        .authenticate_attributed(black_box(&request), env),
                );
            }),
        );
    }
}
