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
    // The core's decision on a request in the VM, per algorithm: a cache hit, and a full
    // parse + verification (what a distinct token costs), median of 3 runs.
    println!();
    println!(
        "| RequestAuthentication decision, in Envoy's VM | cache hit | no cache (parse + verify) |"
    );
    println!("|---|---:|---:|");
    for (name, id) in wanted {
        let n = all.iter().position(|c| c.0 == id).unwrap();
        let iterations = if name.starts_with("HS") || name.starts_with("RS") {
            200
        } else {
            20
        };
        let mut hit = Vec::new();
        let mut full = Vec::new();
        for _ in 0..3 {
            let r = http::get(envoy.port(), &format!("/request/{n}/{iterations}"), &[]);
            assert_eq!(r.status, 200, "{}", envoy.log());
            let r = r.json();
            hit.push(r["cache_hit_ns"].as_f64().unwrap() / 1000.0);
            full.push(r["no_cache_ns"].as_f64().unwrap() / 1000.0);
        }
        hit.sort_by(f64::total_cmp);
        full.sort_by(f64::total_cmp);
        println!("| {name} | {:.1} µs | {:.1} µs |", hit[1], full[1]);
    }

    // What each host call a request can make costs in the VM: the median of 5 runs.
    let mut runs: Vec<serde_json::Value> = (0..5)
        .map(|_| {
            let r = http::get(
                envoy.port(),
                "/hostcalls/20000",
                &[("authorization", "Bearer x")],
            );
            assert_eq!(r.status, 200, "{}", envoy.log());
            r.json()
        })
        .collect();
    println!();
    println!("| host call, in Envoy's VM | ns per call (median of 5 runs of 20,000) |");
    println!("|---|---:|");
    for key in [
        "clock_ns",
        "increment_metric_ns",
        "header_value_ns",
        "header_map_pairs_ns",
        "replace_header_ns",
        "remove_header_ns",
    ] {
        let mut v: Vec<f64> = runs.iter_mut().map(|r| r[key].as_f64().unwrap()).collect();
        v.sort_by(f64::total_cmp);
        println!("| {} | {:.0} |", key.trim_end_matches("_ns"), v[2]);
    }
}
