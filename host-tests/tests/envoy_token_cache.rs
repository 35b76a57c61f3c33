//! The verified-token cache in the real Envoy and `.wasm`: a token that passed (and so sits in
//! the VM's cache, repeated requests hitting it) stops passing when the key set that verified
//! it is replaced — a remote refresh bringing another key under the same `kid` — and when it
//! expires (Envoy's 60 s clock skew included). Expected replies are Envoy `jwt_authn`'s.

use std::time::{Duration, Instant};

use host_tests::envoy::{Envoy, Options};
use host_tests::http::{self, Response};
use host_tests::istio_native::plugin_config;
use host_tests::jwks_server::{Behavior, JwksServer};
use host_tests::plugin_config::{PluginConfig, Policy, Rule, WORKLOAD_NS};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, EcIssuer};
use serde_json::json;

fn get(envoy: &Envoy, token: &str) -> Response {
    let bearer = format!("Bearer {token}");
    http::get(envoy.port(), "/", &[("authorization", bearer.as_str())])
}

/// Polls until `token` is refused with `body`, asserting that it passes until then.
fn passes_until_refused(envoy: &Envoy, token: &str, body: &str, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut passed = 0;
    loop {
        let r = get(envoy, token);
        if r.status == 401 {
            assert_eq!(r.body, body, "{r:?}");
            return passed;
        }
        assert_eq!(r.status, 200, "{r:?}");
        passed += 1;
        assert!(Instant::now() < deadline, "still passing after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cached_token_stops_passing_when_it_expires() {
    let key = EcIssuer::generate("k1");
    let iss = "https://cache-exp.example";
    let upstream = EchoUpstream::start();
    let policies = vec![Policy::new(
        "exp",
        vec![Rule {
            issuer: iss.into(),
            jwks: tokens::jwks_json(&[key.jwk()]),
            ..Rule::default()
        }],
    )];
    let envoy = Envoy::start(&plugin_config(&policies), upstream.port).unwrap();
    // Expired 57 s ago: inside Envoy's 60 s skew for about 3 more seconds.
    let token = key.mint(claims(iss, None, -57));
    let passed = passes_until_refused(&envoy, &token, "Jwt is expired", Duration::from_secs(10));
    assert!(
        passed >= 2,
        "passed {passed} times: at least one was a cache hit"
    );
    // And stays refused.
    assert_eq!(get(&envoy, &token).status, 401);
}

#[test]
fn a_cached_token_stops_passing_when_its_key_is_replaced() {
    let old = EcIssuer::generate("k1");
    // The issuer replaces its key and keeps the kid: only the key set's identity tells the
    // cache that the entry is stale.
    let new = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(tokens::jwks_json(&[old.jwk()])));
    let iss = "https://cache-rotate.example";
    let config = PluginConfig::new()
        .workload(WORKLOAD_NS, &[])
        .jwks(
            &[(server.authority(), "jwks")],
            &[("cacheDuration", json!("1s"))],
        )
        .policy(&Policy::new(
            "r",
            vec![Rule {
                issuer: iss.into(),
                jwks_uri: Some(server.jwks_uri()),
                ..Rule::default()
            }],
        ))
        .render();
    let upstream = EchoUpstream::start();
    let options = Options {
        template: "mesh-authn-remote-jwks.yaml".to_owned(),
        ..Options::default()
    };
    let envoy = Envoy::start_with(&config, upstream.port, &options).unwrap();
    let token = old.mint(claims(iss, None, 600));
    for _ in 0..5 {
        assert_eq!(get(&envoy, &token).status, 200);
    }
    let fetched = server.jwks_hits();
    server.set(Behavior::Serve(tokens::jwks_json(&[new.jwk()])));
    server.wait_for_jwks_hits(fetched + 1, Duration::from_secs(10));
    passes_until_refused(
        &envoy,
        &token,
        "Jwt verification fails",
        Duration::from_secs(10),
    );
    assert_eq!(get(&envoy, &new.mint(claims(iss, None, 600))).status, 200);
}
