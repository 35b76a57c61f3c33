//! Project Wycheproof's RSA signature vectors (tests/fixtures/wycheproof, provenance in
//! tests/fixtures/PROVENANCE.md) through the pure-Rust backend: every key is read as a JWK by
//! the JWKS parser, every vector verified as RS* (RSASSA-PKCS1-v1_5) or PS* (RSASSA-PSS, MGF1
//! with the same hash) with its group's hash. `valid` must verify and `invalid` must not.
//! `acceptable` vectors take BoringSSL's verdict (Envoy's `verify_signature` and jwt_verify_lib
//! run on BoringSSL), listed in [`acceptable_verdict`].
//!
//! The PSS files fix a salt length and mark as `invalid` the signatures made with another
//! ("s_len changed to N": well-formed PSS signatures by the key's owner). The filter requires
//! the hash's length, as Envoy 1.40's BoringSSL does ([`salt_length_accepted`]): a signature
//! with another salt length fails even where Wycheproof says `valid` (every vector of
//! `rsa_pss_2048_sha256_mgf1_0_test.json`), and one with the hash's length verifies even where
//! the file fixed another.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mesh_authn::jwt::token::Alg;
use mesh_authn::jwt::verify::{PureRust, SignatureVerifier as _};
use mesh_authn::jwt::Jwks;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/wycheproof/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The group's public key as a JWK set, through the product's parser.
fn jwks_of(group: &Value) -> Jwks {
    let key = &group["publicKey"];
    let n = hex(key["modulus"].as_str().unwrap());
    let e = hex(key["publicExponent"].as_str().unwrap());
    let jwk = serde_json::json!({"keys": [{
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(n),
        "e": URL_SAFE_NO_PAD.encode(e),
    }]});
    Jwks::parse(&jwk.to_string()).unwrap()
}

/// The salt length a PSS signature must have to verify: the hash's (`RSA_PSS_SALTLEN_DIGEST`, as
/// native jwt_authn in Envoy 1.40 requires, measured in host-tests' differential suite), not
/// any length recovered from the encoded message (`RSA_PSS_SALTLEN_AUTO`).
fn salt_length_accepted(sha: &str) -> usize {
    match sha {
        "SHA-256" => 32,
        "SHA-384" => 48,
        "SHA-512" => 64,
        other => panic!("PS* has no {other}"),
    }
}

/// The salt length of a PSS vector: its group's `sLen`, or the N of a correctly made signature
/// with another ("s_len changed to N").
fn salt_length(group: &Value, test: &Value) -> Option<usize> {
    let changed = test["comment"]
        .as_str()
        .and_then(|c| c.strip_prefix("s_len changed to "))
        .map(|n| n.trim().parse().unwrap());
    changed.or_else(|| group["sLen"].as_u64().map(|n| n as usize))
}

/// BoringSSL's verdict on the `acceptable` vectors these files hold.
fn acceptable_verdict(flags: &[&str]) -> bool {
    match flags {
        // `RSA_verify` compares the whole encoded message with the one it builds, whose
        // DigestInfo always carries the NULL parameters: a DigestInfo without it fails.
        ["MissingNull"] => false,
        other => panic!("no BoringSSL verdict recorded for acceptable {other:?}"),
    }
}

/// Runs every vector of a file; returns how many ran.
fn run(name: &str, alg_of: fn(&str) -> Alg) -> usize {
    let file = fixture(name);
    let mut ran = 0;
    let mut wrong = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        if let Some(mgf_sha) = group.get("mgfSha") {
            assert_eq!(
                mgf_sha, &group["sha"],
                "{name}: only MGF1 with the same hash"
            );
            assert_eq!(group["mgf"], "MGF1", "{name}");
        }
        let alg = alg_of(group["sha"].as_str().unwrap());
        let jwks = jwks_of(group);
        let key = &jwks.keys()[0].key;
        for test in group["tests"].as_array().unwrap() {
            let message = hex(test["msg"].as_str().unwrap());
            let signature = hex(test["sig"].as_str().unwrap());
            let flags: Vec<&str> = test["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            let sha = group["sha"].as_str().unwrap();
            // A PSS signature whose salt is not the hash's length fails whatever else it is;
            // one made with the hash's length where the file fixes another is otherwise sound.
            let salt = salt_length(group, test);
            let wrong_salt = salt.is_some_and(|n| n != salt_length_accepted(sha));
            let expected = match test["result"].as_str().unwrap() {
                _ if wrong_salt => false,
                "valid" => true,
                "invalid"
                    if test["comment"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("s_len changed to ") =>
                {
                    true
                }
                "invalid" => false,
                "acceptable" => acceptable_verdict(&flags),
                other => panic!("{name}: result {other}"),
            };
            if PureRust.verify(alg, key, &message, &signature) != expected {
                wrong.push(format!(
                    "tcId {} ({}, {:?}): expected {expected}",
                    test["tcId"], test["comment"], flags
                ));
            }
            ran += 1;
        }
    }
    assert!(wrong.is_empty(), "{name}:\n{}", wrong.join("\n"));
    assert_eq!(
        ran as u64,
        file["numberOfTests"].as_u64().unwrap(),
        "{name}"
    );
    ran
}

fn rs(sha: &str) -> Alg {
    match sha {
        "SHA-256" => Alg::RS256,
        "SHA-384" => Alg::RS384,
        "SHA-512" => Alg::RS512,
        other => panic!("RS* has no {other}"),
    }
}

fn ps(sha: &str) -> Alg {
    match sha {
        "SHA-256" => Alg::PS256,
        "SHA-384" => Alg::PS384,
        "SHA-512" => Alg::PS512,
        other => panic!("PS* has no {other}"),
    }
}

#[test]
fn pkcs1v15_2048_sha256() {
    assert!(run("rsa_signature_2048_sha256_test", rs) > 250);
}

#[test]
fn pkcs1v15_2048_sha384() {
    assert!(run("rsa_signature_2048_sha384_test", rs) > 200);
}

#[test]
fn pkcs1v15_2048_sha512() {
    assert!(run("rsa_signature_2048_sha512_test", rs) > 200);
}

#[test]
fn pkcs1v15_4096_sha512() {
    assert!(run("rsa_signature_4096_sha512_test", rs) > 200);
}

#[test]
fn pss_2048_sha256_salt_32() {
    assert!(run("rsa_pss_2048_sha256_mgf1_32_test", ps) > 100);
}

#[test]
fn pss_2048_sha256_salt_0() {
    assert!(run("rsa_pss_2048_sha256_mgf1_0_test", ps) > 100);
}

#[test]
fn pss_2048_sha384_salt_48() {
    assert!(run("rsa_pss_2048_sha384_mgf1_48_test", ps) > 100);
}

#[test]
fn pss_3072_sha256_salt_32() {
    assert!(run("rsa_pss_3072_sha256_mgf1_32_test", ps) > 100);
}

#[test]
fn pss_4096_sha512_salt_64() {
    assert!(run("rsa_pss_4096_sha512_mgf1_64_test", ps) > 100);
}

/// Salt lengths 0, 20, 28, 32, 48 and 64 under one key: all valid, since the salt length is
/// recovered from the signature as BoringSSL's default (`RSA_PSS_SALTLEN_AUTO`) does.
#[test]
fn pss_any_salt_length() {
    assert_eq!(run("rsa_pss_misc_test", ps), 18);
}
