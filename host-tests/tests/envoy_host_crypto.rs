//! The host-crypto backend inside real Envoy 1.40. The upstream signature cases (every
//! `verify` case of jwt_verify_lib's suites and Envoy's `test_common.h` tokens) go to the
//! test-only crypto probe (host-tests/crypto-probe), which runs them through mesh-authn's
//! `HostCrypto`, the product's backend, and reports the verdicts. The fixture tokens have
//! fixed and mostly past expiry times, and the filter checks time before the signature, so
//! the product filter could not show their signatures through Envoy; the probe checks
//! signatures only, which is exactly the backend's job.
//!
//! Asserted: Envoy has `verify_signature`; the host's verdict on every (case, key) pair it is
//! given equals the pure-Rust verdict computed natively, and so does the backend's (with its
//! in-VM fallback) on every pair; every bit flip and truncation of every host-checked
//! signature is refused by the host; and the measured host capabilities that decide which
//! algorithms go to the host (RS*, ES* yes; PS*, EdDSA no).

use std::collections::BTreeMap;

use host_tests::http;
use host_tests::probe::{cases, start_probe, Case};
use mesh_authn::jwt::verify::{PureRust, SignatureVerifier};
use mesh_authn::jwt::{Jwks, Jwt};
use serde_json::{json, Value};

fn run_probe(cases: &[Case]) -> Value {
    let envoy = start_probe(cases);
    let summary = http::get(envoy.port(), "/", &[]);
    assert_eq!(summary.status, 200, "{}", envoy.log());
    let summary = summary.json();
    assert_eq!(summary["cases"], cases.len());
    let results: Vec<Value> = (0..cases.len())
        .map(|i| {
            let r = http::get(envoy.port(), &format!("/{i}"), &[]);
            assert_eq!(r.status, 200, "case {i}: {}", envoy.log());
            r.json()
        })
        .collect();
    let capabilities: Vec<Value> = results
        .iter()
        .flat_map(|r| r["capabilities"].as_array().unwrap().clone())
        .collect();
    json!({"uses_host": summary["uses_host"], "cases": results, "capabilities": capabilities})
}

#[test]
fn signature_cases_through_envoy_verify_signature() {
    let cases = cases();
    let report = run_probe(&cases);
    assert_eq!(report["uses_host"], true, "Envoy 1.40 has verify_signature");

    let mut pairs = 0;
    let mut host_pairs = 0;
    let mut by_alg: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut sweep_variants = 0;
    let mut disagreements = Vec::new();
    for ((id, jwks, token, expect, _), got) in cases.iter().zip(report["cases"].as_array().unwrap())
    {
        let jwt = Jwt::parse(token).unwrap();
        let jwks = Jwks::parse(jwks).unwrap();
        let mut candidate_accepted = false;
        for (jwk, entry) in jwks.keys().iter().zip(got["keys"].as_array().unwrap()) {
            let pure = PureRust.verify(
                jwt.alg,
                &jwk.key,
                jwt.signing_input().as_bytes(),
                &jwt.signature,
            );
            pairs += 1;
            let slot = by_alg.entry(jwt.alg.name().to_owned()).or_default();
            slot.0 += 1;
            if entry["backend"] != json!(pure) {
                disagreements.push(format!(
                    "{id} key {}: backend {} vs pure {pure}",
                    entry["index"], entry["backend"]
                ));
            }
            if !entry["host"].is_null() {
                host_pairs += 1;
                slot.1 += 1;
                if entry["host"] != json!(pure) {
                    disagreements.push(format!(
                        "{id} key {}: host {} vs pure {pure}",
                        entry["index"], entry["host"]
                    ));
                }
            }
            if entry["candidate"] == true && entry["backend"] == true {
                candidate_accepted = true;
            }
            if let Some(sweep) = entry.get("sweep") {
                sweep_variants += sweep["variants"].as_u64().unwrap();
                assert_eq!(
                    sweep["host_accepted"],
                    json!([]),
                    "{id}: host accepted a forged signature"
                );
                assert_eq!(sweep["host_errors"], 0, "{id}: host gave no verdict");
            }
        }
        // The upstream expectation, where the case is about the signature.
        match expect.as_str() {
            "Ok" => assert!(
                candidate_accepted,
                "{id}: upstream verifies it, the backend does not"
            ),
            "JwtVerificationFail" | "JwksKidAlgMismatch" => {
                assert!(
                    !candidate_accepted,
                    "{id}: upstream refuses it, the backend accepts it"
                )
            }
            _ => {}
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    println!(
        "{} cases, {pairs} (case, key) pairs, backend and pure agree on all; {host_pairs} pairs \
         verified by Envoy's verify_signature; {sweep_variants} forged variants refused by the \
         host; pairs by alg (all, via host): {by_alg:?}",
        cases.len()
    );
    assert!(host_pairs > 40 && sweep_variants > 10_000);
    for alg in ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"] {
        assert!(by_alg[alg].1 > 0, "no {alg} case went to the host");
    }
    for alg in [
        "PS256", "PS384", "PS512", "HS256", "HS384", "HS512", "EdDSA",
    ] {
        assert_eq!(by_alg[alg].1, 0, "{alg} went to the host");
    }

    // The measurements behind that split, on signatures the pure backend accepts.
    let mut table = BTreeMap::new();
    for cap in report["capabilities"].as_array().unwrap() {
        let key = format!(
            "{} via {}",
            cap["alg"].as_str().unwrap(),
            cap["form"].as_str().unwrap()
        );
        let result = match cap["error"].as_str() {
            Some(e) if !e.is_empty() => format!("{} ({e})", cap["result"]),
            _ => cap["result"].to_string(),
        };
        table.entry(key).or_insert_with(Vec::new).push(result);
    }
    for (what, results) in &mut table {
        results.dedup();
        println!("host verify_signature, {what}: {results:?}");
        let accepted = results.iter().any(|r| r == "true");
        let want = what.starts_with("RS");
        assert_eq!(accepted, want, "{what}: {results:?}");
    }
    for needed in [
        "PS256 via RSASSA-PSS key",
        "PS256 via rsaEncryption key",
        "EdDSA via hash \"sha512\"",
        "ES256 via JWS r||s signature",
        "RS256 via rsaEncryption key",
    ] {
        assert!(table.contains_key(needed), "no measurement of {needed}");
    }
}
