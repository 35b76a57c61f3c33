//! The request path with remote key sets: which requests wait for keys, which are decided at
//! once, and what a missing or rotated key set means. Envoy's fixture tokens
//! (fixtures/PROVENANCE.md); expected statuses are Envoy's (`Jwks remote fetch is failed` when
//! the keys could not be fetched), and "wait" is where Envoy's request would wait on its fetch.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use std::rc::Rc;

use mesh_authn::decision::{Decision, Mutations};
use mesh_authn::jwt::verify::PureRust;
use mesh_authn::jwt::AuthnStatus;
use mesh_authn::jwt::Jwks;
use mesh_authn::remote_jwks::{FetchReason, KeyWait, Keys, RemoteKeys, SourceId};
use mesh_authn::request::Request;
use mesh_authn::request_authn::{Env, KeySource, RequestAuthn};

/// Remote keys in a fixed state.
struct Fixed {
    keys: Keys,
    refetch: bool,
}

impl RemoteKeys for Fixed {
    fn keys(&self, _source: SourceId) -> Keys {
        self.keys.clone()
    }
    fn refetch_for_unknown_kid(&self, _source: SourceId) -> bool {
        self.refetch
    }
}

const SOURCE: SourceId = SourceId(0);

fn decide(token: Option<&str>, keys: Keys, refetch: bool) -> Decision {
    let mut provider = example_provider();
    provider.jwks = KeySource::Remote(SOURCE);
    let authn = RequestAuthn::new(vec![provider]);
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut pairs = vec![(":path", "/")];
    if let Some(b) = &bearer {
        pairs.push(("authorization", b.as_str()));
    }
    let remote = Fixed { keys, refetch };
    let env = Env {
        now: NOW,
        crypto: &PureRust,
        remote: &remote,
        cache: None,
    };
    authn.authenticate(&Request::from_pairs(&pairs), &env)
}

fn wait(reason: FetchReason) -> Decision {
    Decision::NeedKeys(KeyWait {
        source: SOURCE,
        reason,
    })
}

/// A token whose header names `kid` (its signature no longer matches: irrelevant here).
fn with_kid(token: &str, kid: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#);
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
}

/// Envoy's fixture set without its kid-less key.
fn kid_only_jwks() -> Rc<Jwks> {
    let mut doc: serde_json::Value =
        serde_json::from_str(fixture()["public_key_jwks"].as_str().unwrap()).unwrap();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k.get("kid").is_some());
    Rc::new(Jwks::parse(&doc.to_string()).unwrap())
}

#[test]
fn who_waits_for_keys() {
    let ready = || Keys::Ready(public_key_jwks());
    let kid_only = || Keys::Ready(kid_only_jwks());
    let good = token("GoodToken");
    let rotated = with_kid(&good, "rotated-key");
    let cases: Vec<(&str, Option<String>, Keys, bool, Decision)> = vec![
        (
            "no token never waits",
            None,
            Keys::Wait,
            true,
            Decision::Allow(Mutations::default()),
        ),
        (
            "a good token waits for keys",
            Some(good.clone()),
            Keys::Wait,
            false,
            wait(FetchReason::FirstUse),
        ),
        (
            "no keys and no fetch: Envoy's fetch failure",
            Some(good.clone()),
            Keys::Failed,
            false,
            Decision::Deny(AuthnStatus::JwksFetchFail),
        ),
        (
            "expired: decided before keys",
            Some(token("ExpiredToken")),
            Keys::Wait,
            true,
            Decision::Deny(AuthnStatus::JwtExpired),
        ),
        (
            "wrong audience: decided before keys",
            Some(token("InvalidAudToken")),
            Keys::Wait,
            true,
            Decision::Deny(AuthnStatus::JwtAudienceNotAllowed),
        ),
        (
            "malformed: decided before keys",
            Some("a.b".into()),
            Keys::Wait,
            true,
            Decision::Deny(AuthnStatus::JwtBadFormat),
        ),
        (
            "unknown kid, refetch allowed: wait",
            Some(rotated.clone()),
            kid_only(),
            true,
            wait(FetchReason::UnknownKid),
        ),
        (
            "unknown kid, rate-limited: Envoy's kid mismatch",
            Some(rotated.clone()),
            kid_only(),
            false,
            Decision::Deny(AuthnStatus::JwksKidAlgMismatch),
        ),
        // A kid-less key is tried for any kid, so a failure under it may be a rotation too.
        (
            "unknown kid, set with a kid-less key: wait",
            Some(rotated.clone()),
            ready(),
            true,
            wait(FetchReason::UnknownKid),
        ),
        (
            "unknown kid, kid-less key, rate-limited",
            Some(rotated),
            ready(),
            false,
            Decision::Deny(AuthnStatus::JwtVerificationFail),
        ),
        // No kid in the token: nothing says the set is out of date.
        (
            "no kid never refetches",
            Some(token("NonExistKidToken")),
            ready(),
            true,
            Decision::Deny(AuthnStatus::JwtVerificationFail),
        ),
    ];
    for (name, token, keys, refetch, want) in cases {
        assert_eq!(decide(token.as_deref(), keys, refetch), want, "{name}");
    }
    // With the keys there, the good token is allowed (and removed), like an inline set.
    assert!(
        matches!(decide(Some(&good), ready(), true), Decision::Allow(m) if m.remove_headers == ["authorization"])
    );
    // A bad signature under a key that has the token's kid never refetches.
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &sig[1..]);
    assert_eq!(
        decide(Some(&forged), ready(), true),
        Decision::Deny(AuthnStatus::JwtVerificationFail)
    );
}
