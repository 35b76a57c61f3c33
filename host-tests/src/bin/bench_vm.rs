//! Signature verification time inside Envoy's VM (V8), per algorithm: the product's backend
//! (host crypto where it applies) against the pure-Rust code compiled to wasm, through the
//! test-only crypto probe. A benchmark, not a test: `make bench-verify` runs it after the
//! native benchmark.

use host_tests::http;
use host_tests::probe::{cases, start_probe};

fn main() {
    let wanted = [
        (
            "RS256 (2048-bit)",
            "verify_jwk_rsa_test/VerifyJwkRsaTest.CorrectKidOK",
        ),
        (
            "PS256 (2048-bit)",
            "verify_jwk_rsa_pss_test/VerifyJwkRsaPssTest.Ps256CorrectKidOK",
        ),
        ("ES256 (P-256)", "verify_jwk_ec_test/VerifyJwkECTest.KidOK"),
        (
            "ES384 (P-384)",
            "verify_jwk_ec_test/VerifyJwkECTest.KidES384OK",
        ),
        (
            "ES512 (P-521)",
            "verify_jwk_ec_test/VerifyJwkECTest.KidES512OK",
        ),
        (
            "EdDSA (Ed25519)",
            "verify_jwk_okp_test/VerifyJwkOKPTest.KidOK",
        ),
        (
            "HS256",
            "verify_jwk_hmac_test/VerifyJwkHmacTest.CorrectKidHS256OK",
        ),
    ];
    let all = cases();
    let envoy = start_probe(&all);
    println!("| in Envoy's VM | backend (host where it applies) | pure Rust in the VM |");
    println!("|---|---|---|");
    for (name, id) in wanted {
        let n = all.iter().position(|c| c.0 == id).unwrap();
        let iterations = if name.starts_with("HS") { 2000 } else { 50 };
        let r = http::get(envoy.port(), &format!("/bench/{n}/{iterations}"), &[]);
        assert_eq!(r.status, 200, "{}", envoy.log());
        let r = r.json();
        let us = |v: &serde_json::Value| v.as_u64().unwrap() as f64 / 1000.0;
        let via = if r["via_host"] == true { "host" } else { "VM" };
        println!(
            "| verify {name} | {:.1} µs ({via}) | {:.1} µs |",
            us(&r["backend_ns"]),
            us(&r["pure_ns"])
        );
    }
}
