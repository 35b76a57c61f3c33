//! What a verified token writes into the request (`outputPayloadToHeader`,
//! `outputClaimToHeaders`), what every request loses (spoofed output headers, a verified
//! token's cookie), `presence: REQUIRED` and the CORS preflight bypass, on Envoy's fixture
//! tokens. Expected claim header values are the ones Envoy's own
//! `test/extensions/filters/http/jwt_authn/authenticator_test.cc` (`TestClaimToHeader`,
//! envoyproxy/envoy @ 040783c8) asserts for `NestedGoodToken`.

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
use mesh_authn::outputs::{ClaimHeader, Outputs};
use mesh_authn::request::Request;
use mesh_authn::request_authn::{Provider, RequestAuthn};

fn mutations(d: Decision<'_>) -> Mutations<'_> {
    match d {
        Decision::Allow(m) => m,
        Decision::Deny(s) => panic!("denied: {s:?}"),
        Decision::NeedKeys(w) => panic!("waits for keys: {w:?}"),
    }
}

fn claim(header: &str, path: &str) -> ClaimHeader {
    ClaimHeader {
        header: header.to_owned(),
        path: path.split('.').map(str::to_owned).collect(),
    }
}

/// Envoy's `ExampleConfig` outputs.
fn with_envoy_example_outputs(mut p: Provider) -> Provider {
    p.outputs = Outputs {
        payload_header: Some("sec-istio-auth-userinfo".into()),
        claims: vec![
            claim("x-jwt-claim-sub", "sub"),
            claim("x-jwt-claim-nested", "nested.key-1"),
            claim("x-jwt-claim-nested-wrong", "nested.wrong.claim"),
            claim("x-jwt-unsupported-type-claim", "nested.nested-2.key-5[0]"),
            claim("x-jwt-bool-claim", "nested.nested-2.key-3"),
            claim("x-jwt-int-claim", "nested.nested-2.key-4"),
            claim("x-jwt-claim-object-key", "nested.nested-2.key-5"),
        ],
    };
    p
}

fn added<'m>(m: &'m Mutations, name: &str) -> Vec<&'m str> {
    m.add_headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
        .collect()
}

#[test]
fn claims_are_encoded_as_envoy_encodes_them() {
    let authn = RequestAuthn::new(vec![with_envoy_example_outputs(example_provider())]);
    let nested = token("NestedGoodToken");
    let m = mutations(run(
        &authn,
        &[
            (":path", "/"),
            ("authorization", &format!("Bearer {nested}")),
        ],
    ));
    assert_eq!(added(&m, "x-jwt-claim-sub"), ["test@example.com"]);
    assert_eq!(added(&m, "x-jwt-claim-nested"), ["value1"]);
    assert_eq!(added(&m, "x-jwt-bool-claim"), ["true"]);
    assert_eq!(added(&m, "x-jwt-int-claim"), ["9999"]);
    // base64 of ["str1","str2"]
    assert_eq!(
        added(&m, "x-jwt-claim-object-key"),
        ["WyJzdHIxIiwic3RyMiJd"]
    );
    assert!(added(&m, "x-jwt-claim-nested-wrong").is_empty());
    assert!(added(&m, "x-jwt-unsupported-type-claim").is_empty());
    // The payload header is the token's own second segment.
    let segment = nested.split('.').nth(1).unwrap();
    assert_eq!(added(&m, "sec-istio-auth-userinfo"), [segment]);
}

#[test]
fn output_headers_are_removed_from_every_request_even_without_a_token() {
    let authn = RequestAuthn::new(vec![with_envoy_example_outputs(example_provider())]);
    let m = mutations(run(
        &authn,
        &[
            (":path", "/"),
            ("x-jwt-claim-sub", "spoofed"),
            ("sec-istio-auth-userinfo", "spoofed"),
        ],
    ));
    for name in ["sec-istio-auth-userinfo", "x-jwt-claim-sub"] {
        assert!(m.remove_headers.contains(&name), "{name}: {m:?}");
    }
    // Headers the client did not send cost no removal.
    assert!(!m.remove_headers.contains(&"x-jwt-claim-object-key"));
    assert!(m.add_headers.is_empty());
}

#[test]
fn two_verified_tokens_at_one_rule_give_two_payload_values() {
    let authn = RequestAuthn::new(vec![with_envoy_example_outputs(example_provider())]);
    let good = token("GoodToken");
    let path = format!("/p?access_token={}", token("GoodTokenWithSpaces"));
    let m = mutations(run(
        &authn,
        &[
            (":path", &path),
            ("authorization", &format!("Bearer {good}")),
        ],
    ));
    // Envoy verifies the last extracted (the query token) first.
    let seg = |t: &str| t.split('.').nth(1).unwrap().to_owned();
    assert_eq!(
        added(&m, "sec-istio-auth-userinfo"),
        [seg(&token("GoodTokenWithSpaces")), seg(&good)]
    );
}

#[test]
fn the_other_rules_outputs_are_removed_when_the_first_rule_succeeds() {
    // Rule B never runs (A's token verifies), yet its output header goes, as in Envoy.
    let mut a = provider("https://example.com", &[], vec![header("x-a")], false);
    a.outputs.claims = vec![claim("x-a-sub", "sub")];
    let mut b = provider("https://other.com", &[], vec![header("x-b")], false);
    b.outputs.claims = vec![claim("x-b-sub", "sub")];
    let authn = RequestAuthn::new(vec![a, b]);
    let m = mutations(run(
        &authn,
        &[
            (":path", "/"),
            ("x-a", &token("GoodToken")),
            ("x-b-sub", "spoofed"),
        ],
    ));
    assert!(m.remove_headers.contains(&"x-b-sub"), "{m:?}");
    assert_eq!(added(&m, "x-a-sub"), ["test@example.com"]);
}

#[test]
fn a_verified_cookie_is_taken_out_of_cookie_and_the_rest_kept() {
    let p = provider(
        "https://example.com",
        &["example_service"],
        vec![Location::Cookie("session".into())],
        false,
    );
    let authn = RequestAuthn::new(vec![p.clone()]);
    let cookie = format!("a=1; session={};b=\"x y\"", token("GoodToken"));
    let m = mutations(run(&authn, &[(":path", "/"), ("cookie", &cookie)]));
    assert_eq!(
        m.set_headers,
        vec![("cookie".to_owned(), b"a=1; b=\"x y\"".to_vec())]
    );
    // The only cookie: the header goes.
    let cookie = format!("session={}", token("GoodToken"));
    let m = mutations(run(&authn, &[(":path", "/"), ("cookie", &cookie)]));
    assert!(m.set_headers.is_empty());
    assert!(m.remove_headers.contains(&"cookie"));
    // forwardOriginalToken keeps it.
    let mut fwd = p;
    fwd.forward = true;
    let fwd = RequestAuthn::new(vec![fwd]);
    let m = mutations(run(&fwd, &[(":path", "/"), ("cookie", &cookie)]));
    assert!(
        m.set_headers.is_empty() && m.remove_headers.is_empty(),
        "{m:?}"
    );
}

#[test]
fn presence_required_refuses_a_request_without_a_token() {
    let mut p = example_provider();
    p.required = true;
    let authn = RequestAuthn::new(vec![p.clone()]);
    assert_eq!(
        run(&authn, &[(":path", "/")]),
        Decision::Deny(AuthnStatus::JwtMissed)
    );
    // A wrong prefix is no token.
    assert_eq!(
        run(&authn, &[(":path", "/"), ("authorization", "bearer x")]),
        Decision::Deny(AuthnStatus::JwtMissed)
    );
    let good = format!("Bearer {}", token("GoodToken"));
    assert!(matches!(
        run(&authn, &[(":path", "/"), ("authorization", &good)]),
        Decision::Allow(_)
    ));
    // With two rules, the required one must have its own token, even when the other's
    // token verifies.
    let other = provider("https://other.com", &[], vec![header("x-b")], false);
    let authn = RequestAuthn::new(vec![p, other]);
    assert_eq!(
        run(&authn, &[(":path", "/"), ("x-b", &token("OtherGoodToken"))]),
        Decision::Deny(AuthnStatus::JwtMissed)
    );
    assert!(matches!(
        run(
            &authn,
            &[
                (":path", "/"),
                ("authorization", &good),
                ("x-b", &token("OtherGoodToken"))
            ]
        ),
        Decision::Allow(_)
    ));
    // istiod's `requires_all` answers with the first failure in rule order: the required
    // rule (issuer example.com sorts first) is missing its token.
    assert_eq!(
        run(&authn, &[(":path", "/"), ("x-b", &token("ExpiredToken"))]),
        Decision::Deny(AuthnStatus::JwtMissed)
    );
    // With the required token there, a bad optional token is refused (no outer `requires_any`
    // lets a good token carry it, unlike without REQUIRED).
    assert_eq!(
        run(
            &authn,
            &[
                (":path", "/"),
                ("authorization", &good),
                ("x-b", &token("ExpiredToken"))
            ]
        ),
        Decision::Deny(AuthnStatus::JwtUnknownIssuer)
    );
}

#[test]
fn cors_preflight_is_not_authenticated() {
    let mut p = with_envoy_example_outputs(example_provider());
    p.required = true;
    let authn = RequestAuthn::new(vec![p]);
    let expired = format!("Bearer {}", token("ExpiredToken"));
    let preflight = [
        (":method", "OPTIONS"),
        (":path", "/"),
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        ("authorization", expired.as_str()),
        ("x-jwt-claim-sub", "spoofed"),
    ];
    let m = mutations(run(&authn, &preflight));
    assert!(m.remove_headers.contains(&"x-jwt-claim-sub"));
    assert!(!m.remove_headers.contains(&"authorization"));
    // Without Origin, or with an empty one, it is an ordinary request.
    for origin in [None, Some("")] {
        let mut req: Vec<(&str, &str)> = preflight
            .iter()
            .copied()
            .filter(|(n, _)| *n != "origin")
            .collect();
        if let Some(o) = origin {
            req.push(("origin", o));
        }
        assert_eq!(run(&authn, &req), Decision::Deny(AuthnStatus::JwtExpired));
    }
    let get: Vec<(&str, &str)> = preflight
        .iter()
        .map(|&(n, v)| if n == ":method" { (n, "GET") } else { (n, v) })
        .collect();
    assert_eq!(run(&authn, &get), Decision::Deny(AuthnStatus::JwtExpired));
}

#[test]
fn attribution_names_the_rules_behind_a_decision() {
    let a = provider("https://example.com", &[], vec![header("x-a")], false);
    let b = provider("https://other.com", &[], vec![header("x-b")], false);
    let authn = RequestAuthn::new(vec![a, b]);
    let req =
        |pairs: &[(&str, &str)]| authn.authenticate_attributed(&Request::from_pairs(pairs), &ENV);
    let (d, at) = req(&[(":path", "/"), ("x-b", &token("OtherGoodToken"))]);
    assert!(matches!(d, Decision::Allow(_)));
    assert_eq!(*at.verified, [1]);
    assert_eq!(at.denied_by, None);
    let (d, at) = req(&[(":path", "/"), ("x-a", &token("ExpiredToken"))]);
    assert_eq!(d, Decision::Deny(AuthnStatus::JwtExpired));
    assert_eq!(at.denied_by, Some(0));
    let (d, at) = req(&[(":path", "/"), ("x-b", &token("GoodToken"))]);
    assert_eq!(d, Decision::Deny(AuthnStatus::JwtUnknownIssuer));
    assert_eq!(at.denied_by, Some(1));
    let (_, at) = req(&[
        (":method", "OPTIONS"),
        (":path", "/"),
        ("origin", "o"),
        ("access-control-request-method", "GET"),
    ]);
    assert!(at.cors_preflight);
}

/// Envoy's `extractor.cc` keeps params and cookies in maps keyed by name, so a rule's tokens
/// of one kind are extracted in name order, and the authenticator verifies (and writes the
/// outputs of) the last extracted first.
#[test]
fn repeated_output_values_follow_envoys_key_order_within_a_location_kind() {
    let seg = |t: &str| token(t).split('.').nth(1).unwrap().to_owned();
    let payload_of = |locations: Vec<Location>, pairs: &[(&str, &str)]| {
        let mut p = provider(
            "https://example.com",
            &["example_service"],
            locations,
            false,
        );
        p.outputs.payload_header = Some("x-payload".into());
        let authn = RequestAuthn::new(vec![p]);
        let m = mutations(run(&authn, pairs));
        added(&m, "x-payload")
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Params `token` and `secondary_token`: extracted secondary_token, token; verified token first.
    let path = format!(
        "/p?token={}&secondary_token={}",
        token("GoodToken"),
        token("GoodTokenWithSpaces")
    );
    let params = vec![
        Location::Param("token".into()),
        Location::Param("secondary_token".into()),
    ];
    assert_eq!(
        payload_of(params, &[(":path", &path)]),
        [seg("GoodToken"), seg("GoodTokenWithSpaces")]
    );
    // Cookies `session` and `auth`: extracted auth, session; verified session first.
    let cookie = format!(
        "session={}; auth={}",
        token("GoodTokenWithSpaces"),
        token("GoodToken")
    );
    let cookies = vec![
        Location::Cookie("session".into()),
        Location::Cookie("auth".into()),
    ];
    assert_eq!(
        payload_of(cookies, &[(":path", "/"), ("cookie", &cookie)]),
        [seg("GoodTokenWithSpaces"), seg("GoodToken")]
    );
}
