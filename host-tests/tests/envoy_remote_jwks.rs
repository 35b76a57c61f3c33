//! Remote JWKS through the real Envoy and the real `.wasm`: `jwksUri` and OIDC discovery
//! fetched with dispatched calls from a JWKS server on 127.0.0.1 that counts its requests and
//! misbehaves on demand. Expected statuses and bodies are Envoy `jwt_authn`'s
//! (`Jwks remote fetch is failed` for a key set that could not be fetched); expected fetch
//! counts follow from the configured durations. Durations are short so each test takes
//! seconds; no assertion is on timing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use host_tests::envoy::{Envoy, Options};
use host_tests::http::{self, Response};
use host_tests::jwks_server::{Behavior, JwksServer, DISCOVERY_PATH};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, EcIssuer};
use host_tests::yaml_string_literal;

const MSG_FETCH_FAILED: &str = "Jwks remote fetch is failed";
const MSG_NO_KID: &str = "Jwks doesn't have key to match kid or alg from Jwt";
const MSG_BAD_SIGNATURE: &str = "Jwt verification fails";
const TEMPLATE: &str = "mesh-authn-remote-jwks.yaml";

/// One jwtRule fetching its keys: from `jwks_uri`, or by discovery when `None`.
fn rule(issuer: &str, jwks_uri: Option<&str>, extra: &[&str]) -> String {
    let mut s = format!("    - issuer: {}\n", yaml_string_literal(issuer));
    if let Some(uri) = jwks_uri {
        s.push_str(&format!("      jwksUri: {}\n", yaml_string_literal(uri)));
    }
    for line in extra {
        s.push_str(&format!("      {line}\n"));
    }
    s
}

/// The plugin configuration: one RequestAuthentication with `rules`, the `jwks:` section with
/// every server's authority mapped to the template's `jwks` cluster, plus `settings` lines.
fn config(rules: &[String], servers: &[&JwksServer], settings: &[&str]) -> String {
    let clusters: Vec<String> = servers
        .iter()
        .map(|s| format!("{}: jwks", yaml_string_literal(&s.authority())))
        .collect();
    let mut jwks = format!("jwks:\n  clusters: {{{}}}\n", clusters.join(", "));
    for line in settings {
        jwks.push_str(&format!("  {line}\n"));
    }
    format!(
        "workload: {{namespace: foo, labels: {{app: httpbin}}}}\n{jwks}policies:\n\
         - apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: \
         {{name: remote, namespace: foo}}\n  spec:\n    jwtRules:\n{}",
        rules.concat()
    )
}

struct Running {
    envoy: Envoy,
    _upstream: EchoUpstream,
}

fn start_with(config: &str, concurrency: u32) -> Running {
    let upstream = EchoUpstream::start();
    let options = Options {
        template: TEMPLATE.to_owned(),
        concurrency,
        log_level: std::env::var("ENVOY_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        ..Options::default()
    };
    let envoy = Envoy::start_with(config, upstream.port, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    Running {
        envoy,
        _upstream: upstream,
    }
}

fn start(config: &str) -> Running {
    start_with(config, 1)
}

impl Running {
    fn get(&self, token: Option<&str>) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        http::get(self.envoy.port(), "/", &headers)
    }

    fn log_count(&self, needle: &str) -> usize {
        self.envoy.log().matches(needle).count()
    }
}

fn assert_status(r: &Response, status: u16, body: &str) {
    assert_eq!((r.status, r.body.as_str()), (status, body), "{r:?}");
}

fn assert_passed(r: &Response) {
    assert_eq!(r.status, 200, "{r:?}");
    // Reached the echo upstream, which reports the method it saw.
    assert_eq!(r.json()["method"], "GET", "{r:?}");
}

fn token(key: &EcIssuer, issuer: &str) -> String {
    key.mint(claims(issuer, None, 600))
}

fn jwks_of(keys: &[&EcIssuer]) -> String {
    tokens::jwks_json(&keys.iter().map(|k| k.jwk()).collect::<Vec<_>>())
}

#[test]
fn first_fetch_pauses_requests_then_resumes_them_and_caches() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let single = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let issuer = "https://first.example";
    let single_issuer = "https://single.example";
    let envoy = start(&config(
        &[
            rule(issuer, Some(&server.jwks_uri()), &[]),
            rule(single_issuer, Some(&single.jwks_uri()), &[]),
        ],
        &[&server, &single],
        &[],
    ));
    // No token: no wait, no fetch.
    assert_passed(&envoy.get(None));
    assert_eq!((server.jwks_hits(), single.jwks_hits()), (0, 0));

    // One request paused on a healthy fetch, then the same request served from the cache.
    let single_token = token(&key, single_issuer);
    let t = Instant::now();
    assert_passed(&envoy.get(Some(&single_token)));
    let paused = t.elapsed();
    let t = Instant::now();
    assert_passed(&envoy.get(Some(&single_token)));
    eprintln!(
        "MEASURE paused first request {paused:?}, same request cached {:?}",
        t.elapsed()
    );
    assert_eq!(single.jwks_hits(), 1);

    // Eight tokened requests at once, all paused on one fetch, all resumed.
    let good = token(&key, issuer);
    let started = Instant::now();
    let results: Vec<(Response, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let t = Instant::now();
                    let r = envoy.get(Some(&good));
                    (r, t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (r, _) in &results {
        assert_passed(r);
    }
    assert_eq!(server.jwks_hits(), 1, "one fetch for all paused requests");
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    eprintln!(
        "MEASURE first fetch: 8 paused requests all answered within {slowest:?} (burst {:?})",
        started.elapsed()
    );

    // Cache hits: no further fetch.
    for _ in 0..10 {
        assert_passed(&envoy.get(Some(&good)));
    }
    assert_eq!(server.jwks_hits(), 1);
    // A forged signature under the known kid is still a signature failure.
    let forged = tokens::corrupt_signature(&good);
    assert_status(&envoy.get(Some(&forged)), 401, MSG_BAD_SIGNATURE);
    assert_eq!(server.jwks_hits(), 1);
    assert_eq!(
        envoy.log_count(&format!("JWKS {}: fetched", server.jwks_uri())),
        1,
        "one log line"
    );
}

#[test]
fn keys_are_refreshed_in_the_background() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let issuer = "https://refresh.example";
    // cacheDuration 2 s: a refresh starts 1 s after each fetch.
    let envoy = start(&config(
        &[rule(issuer, Some(&server.jwks_uri()), &[])],
        &[&server],
        &["cacheDuration: 2s"],
    ));
    let good = token(&key, issuer);
    assert_passed(&envoy.get(Some(&good)));
    assert_eq!(server.jwks_hits(), 1);
    // No request is needed for the refreshes to happen.
    server.wait_for_jwks_hits(3, Duration::from_secs(10));
    assert_passed(&envoy.get(Some(&good)));
    // A refresh that brings a new set (old key removed) replaces the keys.
    let next = EcIssuer::generate("k2");
    server.set(Behavior::Serve(jwks_of(&[&next])));
    let seen = server.jwks_hits();
    server.wait_for_jwks_hits(seen + 2, Duration::from_secs(10));
    assert_passed(&envoy.get(Some(&token(&next, issuer))));
    let r = envoy.get(Some(&good));
    assert_eq!(r.status, 401, "{r:?}");
}
