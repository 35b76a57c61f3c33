//! Istio's own end-to-end expectations for RequestAuthentication
//! (`tests/integration/security/jwt_test.go`, `TestRequestAuthentication`), replayed through
//! Envoy with mesh-authn: Istio's test tokens and key set (fixtures/istio_common_jwt.json, see
//! fixtures/PROVENANCE.md), Istio's test policies (`testdata/requestauthn/*.yaml.tmpl`, with the
//! `jwksUri` replaced by the same key set inline), and the status codes and upstream headers
//! Istio's test asserts. Cases that need an AuthorizationPolicy (403 without a token) are
//! checked for the authentication half only: the request passes authentication untouched.

use host_tests::envoy::Envoy;
use host_tests::http::{self, Response};
use host_tests::istio_common_jwt as fixture;
use host_tests::plugin_config::PluginConfig;
use host_tests::servers::EchoUpstream;
use serde_json::{json, Value};

fn token(name: &str) -> String {
    fixture()["tokens"][name].as_str().unwrap().to_owned()
}

fn payload(name: &str) -> String {
    token(name).split('.').nth(1).unwrap().to_owned()
}

const ISS1: &str = "test-issuer-1@istio.io";
const ISS2: &str = "test-issuer-2@istio.io";

/// A RequestAuthentication selecting app=httpbin in foo, with these rules (Istio's field names;
/// `jwks` is filled in).
fn policy(name: &str, rules: Value) -> Value {
    let jwks = fixture()["jwks"].as_str().unwrap().to_owned();
    let rules: Vec<Value> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["jwks"] = json!(jwks);
            r
        })
        .collect();
    json!({
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "RequestAuthentication",
        "metadata": {"name": name, "namespace": "foo"},
        "spec": {"selector": {"matchLabels": {"app": "httpbin"}}, "jwtRules": rules},
    })
}

fn start(policies: &[Value], upstream: &EchoUpstream) -> Envoy {
    let config = policies
        .iter()
        .fold(PluginConfig::new(), |c, p| c.raw_policy(p.clone()));
    Envoy::start(&config.render(), upstream.port).unwrap()
}

fn upstream_header(r: &Response, name: &str) -> Vec<String> {
    r.json()["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap().to_owned())
        .collect()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// Istio's `check.RequestHeaders`: each header has exactly this value ("" = absent).
fn assert_headers(case: &str, r: &Response, want: &[(&str, &str)]) {
    assert_eq!(r.status, 200, "{case}: {r:?}");
    for (name, value) in want {
        let got = upstream_header(r, name);
        if value.is_empty() {
            assert!(got.is_empty(), "{case}: {name} reached the app: {got:?}");
        } else {
            assert_eq!(got, [value.to_string()], "{case}: {name}");
        }
    }
}

#[test]
fn authn_only() {
    // testdata/requestauthn/authn-only.yaml.tmpl, with the claim outputs jwt_test.go checks.
    let rules = json!([
        {"issuer": ISS1, "outputPayloadToHeader": "x-test-payload", "outputClaimToHeaders": [
            {"header": "x-jwt-iss", "claim": "iss"},
            {"header": "x-jwt-iat", "claim": "iat"},
            {"header": "x-jwt-nested-claim", "claim": "nested.nested-2.key2"}]},
        {"issuer": ISS2, "outputPayloadToHeader": "x-test-payload"},
    ]);
    let upstream = EchoUpstream::start();
    let envoy = start(&[policy("httpbin", rules)], &upstream);
    let port = envoy.port();

    let r = http::get(
        port,
        "/valid-token-noauthz",
        &[("Authorization", &bearer(&token("TokenIssuer1")))],
    );
    assert_headers(
        "valid-token-noauthz",
        &r,
        &[
            ("authorization", ""),
            ("x-test-payload", &payload("TokenIssuer1")),
            ("x-jwt-iss", ISS1),
            ("x-jwt-iat", "1562182722"),
        ],
    );
    let r = http::get(
        port,
        "/valid-token-2-noauthz",
        &[("Authorization", &bearer(&token("TokenIssuer2")))],
    );
    assert_headers(
        "valid-token-2-noauthz",
        &r,
        &[
            ("authorization", ""),
            ("x-test-payload", &payload("TokenIssuer2")),
        ],
    );
    let r = http::get(
        port,
        "/expired-token-noauthz",
        &[("Authorization", &bearer(&token("TokenExpired")))],
    );
    assert_eq!(r.status, 401, "expired-token-noauthz");
    let r = http::request(
        port,
        "OPTIONS",
        "/expired-token-cors-preflight-request-allowed",
        &[
            ("Authorization", &bearer(&token("TokenExpired"))),
            ("Access-Control-Request-Method", "POST"),
            ("Origin", "https://istio.io"),
        ],
        "",
    );
    assert_eq!(
        r.status, 200,
        "expired-token-cors-preflight-request-allowed"
    );
    let r = http::request(
        port,
        "OPTIONS",
        "/expired-token-cors-preflight-request-allowed",
        &[
            ("Authorization", &bearer(&token("TokenExpired"))),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert_eq!(
        r.status, 401,
        "expired-token-bad-cors-preflight-request-rejected"
    );
    assert_eq!(
        http::get(port, "/no-token-noauthz", &[]).status,
        200,
        "no-token-noauthz"
    );
    let r = http::get(
        port,
        "/valid-token-noauthz",
        &[
            (
                "Authorization",
                &bearer(&token("TokenIssuer1WithNestedClaims2")),
            ),
            ("X-Jwt-Nested-Claim", "value_to_be_replaced"),
        ],
    );
    assert_headers(
        "valid-nested-claim-token",
        &r,
        &[
            ("authorization", ""),
            ("x-test-payload", &payload("TokenIssuer1WithNestedClaims2")),
            ("x-jwt-iss", ISS1),
            ("x-jwt-iat", "1604008018"),
            ("x-jwt-nested-claim", "valueC"),
        ],
    );
    // authn-authz without the authorization half: an opaque token is invalid (Istio's
    // `TokenInvalid`), no token passes authentication.
    let r = http::get(
        port,
        "/",
        &[("Authorization", &bearer(&token("TokenInvalid")))],
    );
    assert_eq!(r.status, 401, "invalid token");
}

#[test]
fn forward() {
    // testdata/requestauthn/forward.yaml.tmpl
    let rules = json!([
        {"issuer": ISS1, "forwardOriginalToken": true, "outputPayloadToHeader": "x-test-payload"},
    ]);
    let upstream = EchoUpstream::start();
    let envoy = start(&[policy("httpbin", rules)], &upstream);
    let t = token("TokenIssuer1");
    let r = http::get(
        envoy.port(),
        "/valid-token-forward",
        &[("Authorization", &bearer(&t))],
    );
    assert_headers(
        "valid-token-forward",
        &r,
        &[
            ("authorization", &bearer(&t)),
            ("x-test-payload", &payload("TokenIssuer1")),
        ],
    );
}

#[test]
fn aud_and_policies_are_combined() {
    // testdata/requestauthn/aud.yaml.tmpl: two policies, issuer-2 twice (with and without
    // audiences); istiod merges them and Envoy accepts issuer-2 tokens without `aud`.
    let part1 = policy(
        "request-authn-part1",
        json!([{"issuer": ISS1, "audiences": ["foo"]}, {"issuer": ISS2, "audiences": ["bar"]}]),
    );
    let part2 = policy("requst-authn-part2", json!([{"issuer": ISS2}]));
    let upstream = EchoUpstream::start();
    let envoy = start(&[part1, part2], &upstream);
    let port = envoy.port();
    let get =
        |t: &str| http::get(port, "/valid-aud", &[("Authorization", &bearer(&token(t)))]).status;
    assert_eq!(get("TokenIssuer1"), 403, "invalid-aud");
    assert_eq!(get("TokenIssuer1WithAud"), 200, "valid-aud");
    assert_eq!(get("TokenIssuer2"), 200, "verify-policies-are-combined");
}

#[test]
fn headers_and_params() {
    // testdata/requestauthn/headers-params.yaml.tmpl (its AuthorizationPolicy left out).
    let rules = json!([{
        "issuer": ISS1,
        "fromHeaders": [{"name": "x-jwt-token", "prefix": "Bearer "}, {"name": "auth-token", "prefix": "Token "}],
        "fromParams": ["token", "secondary_token"],
    }]);
    let upstream = EchoUpstream::start();
    let envoy = start(&[policy("request-authn", rules)], &upstream);
    let port = envoy.port();
    let good = token("TokenIssuer1");
    let expired = token("TokenExpired");
    let path_of = |r: &Response| r.json()["path"].as_str().unwrap().to_owned();

    let r = http::get(port, &format!("/valid-token?token={good}"), &[]);
    assert_eq!(
        (r.status, path_of(&r)),
        (200, "/valid-token".to_owned()),
        "valid-params"
    );
    let r = http::get(port, &format!("/valid-token?secondary_token={good}"), &[]);
    assert_eq!(
        (r.status, path_of(&r)),
        (200, "/valid-token".to_owned()),
        "valid-params-secondary"
    );
    // Not a configured parameter: not a token; Istio's 403 comes from its authorization policy.
    let r = http::get(port, &format!("/valid-token?token_value={good}"), &[]);
    assert_eq!(r.status, 200, "invalid-params");
    assert!(
        path_of(&r).contains("token_value="),
        "invalid-params: {r:?}"
    );
    let r = http::get(
        port,
        &format!("/valid-token?token={good}&secondary_token={good}"),
        &[],
    );
    assert_eq!(
        (r.status, path_of(&r)),
        (200, "/valid-token".to_owned()),
        "valid-token-set"
    );
    let r = http::get(
        port,
        &format!("/valid-token?token={good}&secondary_token={expired}"),
        &[],
    );
    assert_eq!(r.status, 401, "invalid-token-set");
    let r = http::get(port, "/", &[("Auth-Token", &format!("Token {good}"))]);
    assert_headers("valid-header-secondary", &r, &[("auth-token", "")]);
    let r = http::get(port, "/", &[("X-Jwt-Token", &bearer(&good))]);
    assert_headers("valid-header", &r, &[("x-jwt-token", "")]);
    // Not a configured header: untouched (Istio's 403 is authorization's).
    let r = http::get(port, "/", &[("Auth-Header-Param", &bearer(&good))]);
    assert_headers(
        "invalid-header",
        &r,
        &[("auth-header-param", &bearer(&good))],
    );
}
