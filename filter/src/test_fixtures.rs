//! Envoy's `jwt_authn` test fixtures (tests/fixtures/PROVENANCE.md) for the crate's own unit
//! tests: tokens, their key set and an environment in which they are valid.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::rc::Rc;

use serde_json::Value;

use crate::extract::Location;
use crate::jwt::verify::PureRust;
use crate::jwt::{Audiences, Jwks};
use crate::outputs::Outputs;
use crate::remote_jwks::NoRemoteKeys;
use crate::request_authn::{Env, KeySource, Provider};
use crate::token_cache::TokenCache;

/// A time at which the fixture tokens are valid (they expire at 2001001001).
pub const NOW: u64 = 1_700_000_000;

fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "../tests/fixtures/envoy_jwt_authn_test_common.json"
    ))
    .unwrap()
}

/// The fixture token `name` (`GoodToken`: `iss` https://example.com, `sub` test@example.com).
pub fn token(name: &str) -> String {
    fixture()["tokens"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no token {name}"))
        .to_owned()
}

/// The JWKS text that verifies the RS256 fixture tokens.
pub fn jwks_text() -> String {
    fixture()["public_key_jwks"].as_str().unwrap().to_owned()
}

/// [`NOW`], the pure-Rust signature backend, no remote keys, and `cache`.
pub fn env(cache: &TokenCache) -> Env<'_> {
    Env {
        now: NOW,
        crypto: &PureRust,
        remote: &NoRemoteKeys,
        cache: Some(cache),
    }
}

/// A rule for the fixture issuer (https://example.com), any audience, the default token
/// locations, the fixture keys inline, and these `outputs`.
pub fn provider(outputs: Outputs) -> Provider {
    Provider {
        issuer: "https://example.com".into(),
        audiences: Audiences::new(Vec::<String>::new()),
        jwks: KeySource::Inline(Rc::new(Jwks::parse(&jwks_text()).unwrap())),
        locations: Location::defaults(),
        forward: false,
        outputs,
        required: false,
        space_delimited_claims: Vec::new(),
    }
}
