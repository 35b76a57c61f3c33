//! Envoy's own jwt_authn test data (the tokens and keys of `test_common.h`, in
//! `fixtures/envoy_jwt_authn_test_common.json`) through our verifier, natively (no Envoy runs
//! here), with the statuses Envoy's `authenticator_test.cc` asserts for them.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use mesh_authn::jwt::AuthnStatus;
use mesh_authn::request_authn::verify_token;

#[test]
fn envoy_fixture_tokens_get_envoys_statuses() {
    let p = example_provider();
    let cases: &[(&str, Result<(), AuthnStatus>)] = &[
        ("GoodToken", Ok(())),
        ("GoodTokenWithSpaces", Ok(())),
        ("NestedGoodToken", Ok(())),
        ("ExpiredToken", Err(AuthnStatus::JwtExpired)),
        ("NotYetValidToken", Err(AuthnStatus::JwtNotYetValid)),
        ("InvalidAudToken", Err(AuthnStatus::JwtAudienceNotAllowed)),
        // No kid in the token, so every key is a candidate and none verifies.
        ("NonExistKidToken", Err(AuthnStatus::JwtVerificationFail)),
        ("OtherGoodToken", Err(AuthnStatus::JwtUnknownIssuer)),
        // No `aud` while the provider lists audiences: refused before the signature is looked
        // at (Envoy's check order, measured on 1.40: reference §0 item 3).
        ("NonExpiringToken", Err(AuthnStatus::JwtAudienceNotAllowed)),
        // No `iss` while the provider names one (AuthenticatorTest.
        // TestJwtWithoutIssWithValidProvider).
        ("ES256WithoutIssToken", Err(AuthnStatus::JwtUnknownIssuer)),
    ];
    for (name, want) in cases {
        let got = verify_token(&p, &token(name), &ENV).map(|_| ());
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn every_single_bit_flip_of_the_signature_fails() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let p = example_provider();
    let good = token("GoodToken");
    let (signed, sig) = good.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    for bit in 0..sig.len() * 8 {
        let mut bad = sig.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&bad));
        assert_eq!(
            verify_token(&p, &forged, &ENV).unwrap_err(),
            AuthnStatus::JwtVerificationFail,
            "bit {bit}"
        );
    }
    for len in 1..sig.len() {
        let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&sig[..len]));
        assert_eq!(
            verify_token(&p, &forged, &ENV).unwrap_err(),
            AuthnStatus::JwtVerificationFail,
            "len {len}"
        );
    }
}

#[test]
fn expired_and_forged_says_expired_as_envoy_checks_time_before_signature() {
    let p = example_provider();
    let expired = token("ExpiredToken");
    let forged = format!("{}AAAA", expired.trim_end_matches(|c| c != '.'));
    assert_eq!(
        verify_token(&p, &forged, &ENV).unwrap_err(),
        AuthnStatus::JwtExpired
    );
}

#[test]
fn es256_without_iss_token_signature_verifies_with_its_key() {
    // Envoy's tests only assert JwtUnknownIssuer for it; that the signature itself verifies
    // was checked independently with Python `cryptography` (ECDSA P-256, SHA-256).
    use mesh_authn::jwt::verify::{verify_signature, PureRust};
    use mesh_authn::jwt::{Jwks, Jwt};
    let jwks = Jwks::parse(fixture()["es256_public_key_jwks"].as_str().unwrap()).unwrap();
    let jwt = Jwt::parse(&token("ES256WithoutIssToken")).unwrap();
    assert_eq!(verify_signature(&jwt, &jwks, &PureRust), Ok(()));
}
