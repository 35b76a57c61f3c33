//! RequestAuthentication over whole requests: Istio's requirement tree with Envoy's
//! order-dependent token removal, on Envoy's fixture tokens. Expected outcomes are the ones
//! measured on Envoy 1.40 (shared/reference/istio-envoy-semantics.md §1.4).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use mesh_authn::decision::{Decision, Mutations};
use mesh_authn::extract::Location;
use mesh_authn::jwt::AuthnStatus;
use mesh_authn::request_authn::RequestAuthn;

fn allowed<'c>(remove: &[&'c str], path: Option<&str>) -> Decision<'c> {
    Decision::Allow(Mutations {
        remove_headers: remove.into(),
        path: path.map(|p| p.as_bytes().to_vec()),
        ..Default::default()
    })
}

#[test]
fn one_rule() {
    let authn = RequestAuthn::new(vec![example_provider()]);
    let good = format!("Bearer {}", token("GoodToken"));
    let expired = format!("Bearer {}", token("ExpiredToken"));
    assert_eq!(run(&authn, &[(":path", "/")]), allowed(&[], None));
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &good)]),
        allowed(&["authorization"], None)
    );
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &expired)]),
        Decision::Deny(AuthnStatus::JwtExpired)
    );
    assert_eq!(
        run(
            &authn,
            &[(":path", "/"), ("authorization", "Bearer sometoken")]
        ),
        Decision::Deny(AuthnStatus::JwtBadFormat)
    );
    // Wrong prefix: no token, passes, header untouched.
    let lower = format!("bearer {}", token("ExpiredToken"));
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &lower)]),
        allowed(&[], None)
    );
    // Every token must verify: good header, expired query parameter.
    let path = format!("/p?access_token={}", token("ExpiredToken"));
    assert_eq!(
        run(&authn, &[(":path", &path), ("authorization", &good)]),
        Decision::Deny(AuthnStatus::JwtExpired)
    );
    // A verified query token is removed, other parameters kept byte for byte.
    let path = format!("/p?a=%2F&access_token={}&b", token("GoodToken"));
    assert_eq!(
        run(&authn, &[(":path", &path)]),
        allowed(&[], Some("/p?a=%2F&b"))
    );
}

#[test]
fn forward_original_token_keeps_it() {
    let mut p = example_provider();
    p.forward = true;
    let authn = RequestAuthn::new(vec![p]);
    let good = format!("Bearer {}", token("GoodToken"));
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &good)]),
        allowed(&[], None)
    );
}

#[test]
fn two_rules_at_distinct_headers_a_good_one_lets_a_bad_other_through_as_envoy_does() {
    let a = provider("https://example.com", &[], vec![header("x-a")], false);
    let b = provider("https://other.com", &[], vec![header("x-b")], false);
    let authn = RequestAuthn::new(vec![a, b]);
    let good_a = token("GoodToken");
    let good_b = token("OtherGoodToken");
    let expired = token("ExpiredToken");
    assert_eq!(run(&authn, &[(":path", "/")]), allowed(&[], None));
    assert_eq!(
        run(&authn, &[(":path", "/"), ("x-a", &good_a)]),
        allowed(&["x-a"], None)
    );
    assert_eq!(
        run(&authn, &[(":path", "/"), ("x-b", &good_b)]),
        allowed(&["x-b"], None)
    );
    // Measured on Envoy 1.40: the bad x-b token is forwarded untouched.
    assert_eq!(
        run(
            &authn,
            &[(":path", "/"), ("x-a", &good_a), ("x-b", &expired)]
        ),
        allowed(&["x-a"], None)
    );
    assert_eq!(
        run(&authn, &[(":path", "/"), ("x-a", &expired)]),
        Decision::Deny(AuthnStatus::JwtExpired)
    );
    // Issuer B's token at A's location.
    assert_eq!(
        run(&authn, &[(":path", "/"), ("x-a", &good_b)]),
        Decision::Deny(AuthnStatus::JwtUnknownIssuer)
    );
}

#[test]
fn two_rules_sharing_the_default_location() {
    let one = provider("https://example.com", &[], Location::defaults(), false);
    let two = provider("https://other.com", &[], Location::defaults(), false);
    let third_only = provider("https://third.example", &[], Location::defaults(), false);
    let authn = RequestAuthn::new(vec![one.clone(), two.clone()]);
    let good1 = format!("Bearer {}", token("GoodToken"));
    let good2 = format!("Bearer {}", token("OtherGoodToken"));
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &good1)]),
        allowed(&["authorization"], None)
    );
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &good2)]),
        allowed(&["authorization"], None)
    );
    // iss-1 in the header and valid iss-2 in access_token: 200 through the order-dependent
    // removal (P1 removes the param token before failing on the header one).
    let path = format!("/p?access_token={}", token("OtherGoodToken"));
    assert_eq!(
        run(&authn, &[(":path", &path), ("authorization", &good1)]),
        allowed(&["authorization"], Some("/p"))
    );
    // iss-1 in the header and a bad token in access_token: 401.
    let path = format!("/p?access_token={}", token("ExpiredToken"));
    assert_eq!(
        run(&authn, &[(":path", &path), ("authorization", &good1)]),
        Decision::Deny(AuthnStatus::JwtExpired)
    );
    // Unknown issuer for every rule.
    let authn = RequestAuthn::new(vec![one, third_only]);
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", &good2)]),
        Decision::Deny(AuthnStatus::JwtUnknownIssuer)
    );
}

/// `GoodToken`'s header and payload under `NonExpiringToken`'s signature: a token anyone can
/// make, which must never verify.
fn forged() -> String {
    let good = token("GoodToken");
    let (signed, _) = good.rsplit_once('.').unwrap();
    let other = token("NonExpiringToken");
    let (_, signature) = other.rsplit_once('.').unwrap();
    format!("{signed}.{signature}")
}

fn cookie_rule(forward: bool) -> RequestAuthn {
    RequestAuthn::new(vec![provider(
        "https://example.com",
        &["example_service"],
        vec![Location::Cookie("session".into())],
        forward,
    )])
}

#[test]
fn the_finding_a_forged_cookie_named_session_space_is_refused() {
    // Issue 14 item 2, the exact request: Go net/http, Python http.cookies and Node `cookie`
    // read `session =<forged>` as `session`; before, the valid one was removed and the forged
    // one forwarded with a 200.
    assert_cookie_refused(&format!(
        "session={}; session ={}",
        token("GoodToken"),
        forged()
    ));
}

/// A Cookie header that must be refused whether the verified token is forwarded or not.
fn assert_cookie_refused(cookie: &str) {
    for forward in [false, true] {
        assert_eq!(
            run(&cookie_rule(forward), &[(":path", "/"), ("cookie", cookie)]),
            Decision::Deny(AuthnStatus::JwtVerificationFail),
            "{cookie} forward {forward}"
        );
    }
}

#[test]
fn a_cookie_any_common_parser_reads_as_the_name_must_verify_too() {
    let good = token("GoodToken");
    let forged = forged();
    for cookie in [
        format!("session={good}; sess%69on={forged}"),
        format!("session={good}; SESSION={forged}"),
        format!("session={good}; a=1 session={forged}"),
        format!("session={good}; a=1,session={forged}"),
        format!("session={good}; \tsession={forged}"),
        format!("session[x]={forged}; session={good}"),
    ] {
        assert_cookie_refused(&cookie);
    }
    // Two valid ones under two spellings: both verify, both go.
    let cookie = format!(
        "a=1; session={good}; Sess%69on={}; b=2",
        token("GoodTokenWithSpaces")
    );
    let rule = cookie_rule(false);
    let Decision::Allow(m) = run(&rule, &[(":path", "/"), ("cookie", &cookie)]) else {
        panic!("denied")
    };
    assert_eq!(
        m.set_headers,
        vec![("cookie".to_owned(), b"a=1; b=2".to_vec())]
    );
}
