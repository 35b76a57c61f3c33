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
use mesh_authn::extract::Location;
use mesh_authn::jwt::verify::PureRust;
use mesh_authn::jwt::AuthnStatus;
use mesh_authn::jwt::Jwks;
use mesh_authn::remote_jwks::{FetchReason, KeyWait, Keys, RemoteKeys, SourceId};
use mesh_authn::request::Request;
use mesh_authn::request_authn::{Env, KeySource, Provider, RequestAuthn};

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

fn decide(token: Option<&str>, keys: Keys, refetch: bool) -> Decision<'static> {
    let mut provider = example_provider();
    provider.jwks = KeySource::Remote(SOURCE);
    // A decision borrows the names it removes from the rules; leaked so it can be returned.
    let authn: &'static RequestAuthn = Box::leak(Box::new(RequestAuthn::new(vec![provider])));
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

fn wait(reason: FetchReason) -> Decision<'static> {
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
        matches!(decide(Some(&good), ready(), true), Decision::Allow(m) if *m.remove_headers == ["authorization"])
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

/// Remote keys per source: source 0 in `first`, every other in `rest`.
struct PerSource {
    first: Keys,
    rest: Keys,
}

impl RemoteKeys for PerSource {
    fn keys(&self, source: SourceId) -> Keys {
        if source == SOURCE {
            self.first.clone()
        } else {
            self.rest.clone()
        }
    }
    fn refetch_for_unknown_kid(&self, _source: SourceId) -> bool {
        false
    }
}

/// Two rules, any of them (Istio's `requires_any`): rule A's keys are remote and not there
/// yet, rule B's are at hand. Native Envoy (`AnyVerifierImpl`) answers as soon as one child
/// verifies: a request carrying B's valid token goes through at once, without waiting for A's
/// fetch (measured side by side with a hanging JWKS server in
/// `host-tests/tests/envoy_remote_jwks.rs::a_rule_whose_keys_time_out_does_not_hide_another_rules_valid_token`:
/// native 200 at once). While none verifies, a waiting rule still makes the request wait.
#[test]
fn any_of_goes_through_at_once_when_another_rule_verifies_while_keys_are_fetched() {
    // Rules sorted by issuer, as istiod does: A (example.com, remote keys) is tried first.
    let mut a = example_provider();
    a.locations = vec![header("x-a")];
    a.jwks = KeySource::Remote(SOURCE);
    let b = provider("https://other.com", &[], Location::defaults(), false);
    let mut b_remote = b.clone();
    b_remote.jwks = KeySource::Remote(SourceId(1));
    let a_token = token("GoodToken");
    let b_bearer = format!("Bearer {}", token("OtherGoodToken"));
    let run = |rules: Vec<Provider>, pairs: &[(&str, &str)]| {
        let remote = PerSource {
            first: Keys::Wait,
            rest: Keys::Failed,
        };
        let env = Env {
            now: NOW,
            crypto: &PureRust,
            remote: &remote,
            cache: None,
        };
        let authn: &'static RequestAuthn = Box::leak(Box::new(RequestAuthn::new(rules)));
        authn.authenticate(&Request::from_pairs(pairs), &env)
    };
    let both = [
        ("x-a", a_token.as_str()),
        ("authorization", b_bearer.as_str()),
    ];
    // B verifies: through at once, B's token removed, A's left alone (it was not verified).
    let d = run(vec![a.clone(), b.clone()], &both);
    assert!(
        matches!(&d, Decision::Allow(m) if *m.remove_headers == ["authorization"]),
        "{d:?}"
    );
    // Nothing else verifies: A's keys may still verify it, so the request waits.
    let a_waits = wait(FetchReason::FirstUse);
    let not_b = format!("Bearer {}", token("ExpiredToken"));
    let only_a = [("x-a", a_token.as_str())];
    let a_and_not_b = [("x-a", a_token.as_str()), ("authorization", not_b.as_str())];
    assert_eq!(run(vec![a.clone(), b.clone()], &only_a), a_waits);
    assert_eq!(run(vec![a.clone(), b.clone()], &a_and_not_b), a_waits);
    // B's keys failed to come: B cannot verify, A may.
    assert_eq!(run(vec![a, b_remote], &both), a_waits);
}
