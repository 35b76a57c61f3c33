//! Fixtures shared by the native integration tests (see fixtures/PROVENANCE.md).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::rc::Rc;

use mesh_authn::decision::Decision;
use mesh_authn::extract::Location;
use mesh_authn::jwt::verify::PureRust;
use mesh_authn::jwt::{Audiences, Jwks};
use mesh_authn::remote_jwks::NoRemoteKeys;
use mesh_authn::request::Request;
use mesh_authn::request_authn::{Env, KeySource, Provider, RequestAuthn};
use serde_json::Value;

/// The decision on a request made of `pairs`, in [`ENV`].
pub fn run<'c>(authn: &'c RequestAuthn, pairs: &[(&str, &str)]) -> Decision<'c> {
    authn.authenticate(&Request::from_pairs(pairs), &ENV)
}

/// A time at which Envoy's fixture tokens are valid (exp 2001001001) and `ExpiredToken`
/// (exp 1205005587) is not.
pub const NOW: u64 = 1_700_000_000;

/// The environment the native tests verify in: [`NOW`] and the pure-Rust backend.
pub const ENV: Env<'static> = Env {
    now: NOW,
    crypto: &PureRust,
    remote: &NoRemoteKeys,
    cache: None,
};

pub fn fixture() -> Value {
    let text = include_str!("../fixtures/envoy_jwt_authn_test_common.json");
    serde_json::from_str(text).unwrap()
}

pub fn token(name: &str) -> String {
    fixture()["tokens"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no token {name}"))
        .to_owned()
}

pub fn public_key_jwks() -> Rc<Jwks> {
    Rc::new(Jwks::parse(fixture()["public_key_jwks"].as_str().unwrap()).unwrap())
}

pub fn provider(
    issuer: &str,
    audiences: &[&str],
    locations: Vec<Location>,
    forward: bool,
) -> Provider {
    Provider {
        issuer: issuer.to_owned(),
        audiences: Audiences::new(audiences),
        jwks: KeySource::Inline(public_key_jwks()),
        locations,
        forward,
        outputs: Default::default(),
        required: false,
        space_delimited_claims: Vec::new(),
    }
}

/// Envoy's `ExampleConfig` provider.
pub fn example_provider() -> Provider {
    let f = fixture();
    let auds: Vec<&str> = f["example_provider"]["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    provider(
        f["example_provider"]["issuer"].as_str().unwrap(),
        &auds,
        Location::defaults(),
        false,
    )
}

pub fn header(name: &str) -> Location {
    Location::Header {
        name: name.to_owned(),
        prefix: String::new(),
    }
}
