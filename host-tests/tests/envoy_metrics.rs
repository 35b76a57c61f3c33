//! The filter's counters, read back from Envoy's admin `/stats` after a known mix of requests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use host_tests::envoy::Envoy;
use host_tests::http;
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, RsaIssuer};
use host_tests::yaml_string_literal;

#[test]
fn counters_by_outcome_reason_and_issuer() {
    let a = RsaIssuer::generate("a");
    let b = RsaIssuer::generate("b");
    let rule = |iss: &str, key: &RsaIssuer, header: &str| {
        format!(
            "    - issuer: {iss}\n      audiences: [svc]\n      jwks: {}\n      fromHeaders: [{{name: {header}}}]\n",
            yaml_string_literal(&tokens::jwks_json(&[key.jwk()]))
        )
    };
    let config = format!(
        "workload: {{namespace: foo}}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: \
         RequestAuthentication\n  metadata: {{name: p, namespace: foo}}\n  spec:\n    jwtRules:\n{}{}",
        rule("https://a.example.com", &a, "x-a"),
        rule("https://b.example.com", &b, "x-b")
    );
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(&config, upstream.port).unwrap();
    let good_a = a.mint(claims("https://a.example.com", Some("svc"), 600));
    let good_b = b.mint(claims("https://b.example.com", Some("svc"), 600));
    let expired_b = b.mint(claims("https://b.example.com", Some("svc"), -600));
    let wrong_aud_a = a.mint(claims("https://a.example.com", Some("other"), 600));
    let port = envoy.port();
    let get = |h: &[(&str, &str)]| http::get(port, "/", h).status;
    assert_eq!(get(&[]), 200);
    assert_eq!(get(&[("x-a", &good_a)]), 200);
    assert_eq!(get(&[("x-a", &good_a)]), 200);
    assert_eq!(get(&[("x-b", &good_b)]), 200);
    assert_eq!(get(&[("x-b", &expired_b)]), 401);
    assert_eq!(get(&[("x-a", &wrong_aud_a)]), 403);
    assert_eq!(get(&[("x-a", "garbage")]), 401);
    let preflight = http::request(
        port,
        "OPTIONS",
        "/",
        &[
            ("Origin", "https://app"),
            ("Access-Control-Request-Method", "GET"),
            ("x-b", &expired_b),
        ],
        "",
    );
    assert_eq!(preflight.status, 200);

    let stats = envoy.stats();
    let want: &[(&str, u64)] = &[
        ("allowed", 5),
        ("denied", 3),
        ("cors_preflight_bypassed", 1),
        ("denied.jwt_expired", 1),
        ("denied.jwt_audience_not_allowed", 1),
        ("denied.jwt_bad_format", 1),
        ("denied.jwt_verification_fail", 0),
        ("issuer.https___a_example_com.allowed", 2),
        ("issuer.https___b_example_com.allowed", 1),
        ("issuer.https___a_example_com.denied", 2),
        ("issuer.https___b_example_com.denied", 1),
    ];
    let mut wrong = Vec::new();
    for (name, value) in want {
        let full = format!("wasmcustom.mesh_authn.{name}");
        let got = envoy.stat(&full);
        if got != Some(*value) {
            wrong.push(format!("{full}: want {value}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n/stats:\n{}",
        wrong.join("\n"),
        stats
            .lines()
            .filter(|l| l.contains("mesh_authn"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
