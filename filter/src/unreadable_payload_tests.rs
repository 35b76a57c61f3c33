//! Every reader of a verified token's payload map fails closed when the map cannot be built
//! although the scanner accepted the payload ([`Jwt::payload`]). The two parsers agree on
//! every input found so far, so the divergence is made with a test-only seam
//! (`Jwt::with_unreadable_payload`) and fed to the filter through the verified-token cache,
//! the path on which a token's payload is read long after it was scanned.
//!
//! Each test first runs the same request with the readable token, so it shows that the rule
//! applies, then with the unreadable one. Tokens and keys: Envoy's `jwt_authn` test fixtures
//! (tests/fixtures/PROVENANCE.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::rc::Rc;

use crate::authorize::{authorize, Connection};
use crate::config::FilterConfig;
use crate::decision::Decision;
use crate::export::{exports, CLAIMS};
use crate::jwt::{AuthnStatus, Jwks, Jwt, UnreadablePayload};
use crate::local_reply::LocalReply;
use crate::outputs::{ClaimHeader, Outputs};
use crate::request::Request;
use crate::request_authn::{Attribution, KeySource, Provider, RequestAuthn, VerifiedToken};
use crate::test_fixtures::{env, jwks_text, provider, token};
use crate::token_cache::{Settings, TokenCache, TokenKey};

/// `GoodToken`'s `sub`.
const SUB: &str = "test@example.com";

fn good_token() -> String {
    token("GoodToken")
}

/// `GoodToken` as the cache would hold it, readable or not.
fn cached(readable: bool) -> Rc<Jwt> {
    let jwt = Jwt::parse(&good_token()).unwrap();
    Rc::new(if readable {
        jwt
    } else {
        jwt.with_unreadable_payload()
    })
}

fn request() -> Request {
    let bearer = format!("Bearer {}", good_token());
    Request::from_pairs(&[(":path", "/"), ("authorization", &bearer)])
}

fn inline_keys(provider: &Provider) -> Rc<Jwks> {
    match &provider.jwks {
        KeySource::Inline(jwks) => Rc::clone(jwks),
        KeySource::Remote(_) => panic!("the fixture's keys are inline"),
    }
}

/// `outputClaimToHeaders: [{header: x-jwt-claim-sub, claim: sub}]`: without the map there is
/// no claim to copy, and the token is refused as Envoy refuses a payload it cannot parse,
/// never let through without its header.
#[test]
fn a_claim_header_rule_refuses_the_token() {
    let provider = provider(Outputs {
        payload_header: None,
        claims: vec![ClaimHeader {
            header: "x-jwt-claim-sub".into(),
            path: vec!["sub".into()],
        }],
    });
    let keys = inline_keys(&provider);
    let authn = RequestAuthn::new(vec![provider]);
    let decide = |readable| {
        let cache = TokenCache::new(Settings::default());
        cache.insert(
            &TokenKey::new(good_token().as_bytes()),
            &keys,
            cached(readable),
        );
        authn.authenticate(&request(), &env(&cache))
    };

    let Decision::Allow(m) = decide(true) else {
        panic!("the readable token is refused")
    };
    assert_eq!(
        m.add_headers,
        [("x-jwt-claim-sub".to_owned(), SUB.as_bytes().to_vec())]
    );
    assert_eq!(
        decide(false),
        Decision::Deny(AuthnStatus::JwtPayloadParseErrorBadJson)
    );
}

/// A DENY AuthorizationPolicy on `request.auth.claims[sub]`: without the map it cannot tell
/// whether the rule matches, so the request is refused, never allowed.
#[test]
fn a_deny_on_a_claim_refuses_the_request() {
    let policies = serde_json::json!({
        "workload": {"namespace": "foo"},
        "policies": [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "RequestAuthentication",
                "metadata": {"name": "jwt", "namespace": "foo"},
                "spec": {"jwtRules": [{"issuer": "https://example.com", "jwks": jwks_text()}]}
            },
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny-tester", "namespace": "foo"},
                "spec": {
                    "action": "DENY",
                    "rules": [{"when": [{"key": "request.auth.claims[sub]", "values": [SUB]}]}]
                }
            }
        ]
    });
    let outcome = |readable| {
        let config = FilterConfig::parse(policies.to_string().as_bytes()).unwrap();
        let keys = inline_keys(&config.request_authn.providers()[0]);
        config.token_cache.insert(
            &TokenKey::new(good_token().as_bytes()),
            &keys,
            cached(readable),
        );
        let request = request();
        let (decision, attribution) = config
            .request_authn
            .authenticate_attributed(&request, &env(&config.token_cache));
        let Decision::Allow(m) = decision else {
            panic!("RequestAuthentication refused the token: {decision:?}")
        };
        authorize(&config, &request, &m, &attribution, &Connection::default())
            .map(|outcome| LocalReply::authz_denied(&outcome).is_some())
    };
    assert_eq!(outcome(true), Ok(true), "the DENY rule does not apply");
    // The adapter refuses the request (500, `mesh_authn_internal_error`) with this reason.
    assert_eq!(outcome(false), Err(UnreadablePayload));
    assert_eq!(
        UnreadablePayload.to_string(),
        "cannot read the verified token's claims: Jwt payload is an invalid JSON"
    );
}

/// `mesh_authn.claims` cannot be written: the request is not let through without it (or with
/// other claims in its place).
#[test]
fn the_claims_export_refuses() {
    let attribution = |readable| {
        let mut attribution = Attribution::default();
        attribution.token = Some(VerifiedToken {
            provider: 0,
            jwt: cached(readable),
        });
        attribution
    };
    let exported_sub = |readable| {
        let exports = exports(&attribution(readable), None)?;
        let (_, claims) = exports.iter().find(|(key, _)| *key == CLAIMS).unwrap();
        let claims: serde_json::Value = serde_json::from_str(claims).unwrap();
        Ok(claims["sub"].as_str().unwrap().to_owned())
    };
    assert_eq!(exported_sub(true), Ok(SUB.to_owned()));
    assert_eq!(exported_sub(false), Err(UnreadablePayload));
}
