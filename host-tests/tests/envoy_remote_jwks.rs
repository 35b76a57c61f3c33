//! Remote JWKS through the real Envoy and the real `.wasm`: `jwksUri` and OIDC discovery
//! fetched with dispatched calls from a JWKS server on 127.0.0.1 that counts its requests and
//! misbehaves on demand. Expected statuses and bodies are Envoy `jwt_authn`'s
//! (`Jwks remote fetch is failed` for a key set that could not be fetched); expected fetch
//! counts follow from the configured durations. Durations are short so each test takes
//! seconds; no assertion is on timing.

use std::time::{Duration, Instant};

use host_tests::envoy::{validate_template, Envoy, Options};
use host_tests::http::{self, Response};
use host_tests::jwks_server::{Behavior, JwksServer, DISCOVERY_PATH};
use host_tests::plugin_config::{PluginConfig, Policy, Rule};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, EcIssuer};
use host_tests::yaml_string_literal;
use serde_json::{json, Value};

const MSG_FETCH_FAILED: &str = "Jwks remote fetch is failed";
const MSG_NO_KID: &str = "Jwks doesn't have key to match kid or alg from Jwt";
const MSG_BAD_SIGNATURE: &str = "Jwt verification fails";
const TEMPLATE: &str = "mesh-authn-remote-jwks.yaml";

/// One jwtRule fetching its keys: from `jwks_uri`, or by discovery when `None`.
fn rule(issuer: &str, jwks_uri: Option<&str>, extra: &[(&'static str, Value)]) -> Rule {
    Rule {
        issuer: issuer.into(),
        jwks_uri: jwks_uri.map(str::to_owned),
        extra: extra.to_vec(),
        ..Rule::default()
    }
}

/// The plugin configuration: one RequestAuthentication with `rules`, the `jwks:` section with
/// every server's authority mapped to the template's `jwks` cluster, plus `settings`.
fn config(rules: &[Rule], servers: &[&JwksServer], settings: &[(&str, Value)]) -> String {
    let clusters: Vec<(String, &str)> = servers.iter().map(|s| (s.authority(), "jwks")).collect();
    PluginConfig::new()
        .jwks(&clusters, settings)
        .policy(&Policy::new("remote", rules.to_vec()))
        .render()
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

    /// Waits until the log has `needle` (panics after `limit`).
    fn wait_for_log(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.log_count(needle) == 0 {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in the log within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
    let warmup = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let issuer = "https://first.example";
    let single_issuer = "https://single.example";
    let warmup_issuer = "https://warmup.example";
    let envoy = start(&config(
        &[
            rule(issuer, Some(&server.jwks_uri()), &[]),
            rule(single_issuer, Some(&single.jwks_uri()), &[]),
            rule(warmup_issuer, Some(&warmup.jwks_uri()), &[]),
        ],
        &[&server, &single, &warmup],
        &[],
    ));
    // No token: no wait, no fetch.
    assert_passed(&envoy.get(None));
    assert_eq!((server.jwks_hits(), single.jwks_hits()), (0, 0));
    // The VM's first verification also compiles the crypto code: keep it out of the timing.
    assert_passed(&envoy.get(Some(&token(&key, warmup_issuer))));

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
        // Decided again by the root when the keys came: the verified token was removed.
        let headers = r.json()["headers"].as_array().unwrap().clone();
        assert!(
            headers.iter().all(|h| h[0] != "authorization"),
            "{headers:?}"
        );
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
        &[("cacheDuration", json!("2s"))],
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

/// Each way a fetch can fail: with no keys yet, tokens get 401 and requests without a token
/// pass; with keys fetched before, the stale keys keep serving; a later good fetch recovers.
#[test]
fn failed_fetches_fail_closed_without_keys_and_serve_stale_keys_with_them() {
    let key = EcIssuer::generate("k1");
    let good = jwks_of(&[&key]);
    let modes: Vec<(&str, Behavior)> = vec![
        ("status500", Behavior::Status(500)),
        ("hang", Behavior::Hang(Duration::from_secs(3))),
        ("garbage", Behavior::Garbage),
        ("huge", Behavior::Huge(10 << 20)),
        ("close", Behavior::CloseMidResponse),
    ];
    let cold: Vec<JwksServer> = modes
        .iter()
        .map(|(_, b)| JwksServer::start(b.clone()))
        .collect();
    let warm: Vec<JwksServer> = modes
        .iter()
        .map(|_| JwksServer::start(Behavior::Serve(good.clone())))
        .collect();
    let iss = |kind: &str, name: &str| format!("https://{kind}-{name}.example");
    let mut rules = Vec::new();
    for (i, (name, _)) in modes.iter().enumerate() {
        // A short timeout where the server hangs; elsewhere the default, so that a slow 10 MiB
        // transfer on a loaded machine still ends as "too large", not as a timeout.
        let timeout: &[(&str, Value)] = if *name == "hang" {
            &[("timeout", json!("0.5s"))]
        } else {
            &[]
        };
        rules.push(rule(&iss("cold", name), Some(&cold[i].jwks_uri()), timeout));
        rules.push(rule(&iss("warm", name), Some(&warm[i].jwks_uri()), timeout));
    }
    let servers: Vec<&JwksServer> = cold.iter().chain(warm.iter()).collect();
    let envoy = start(&config(
        &rules,
        &servers,
        &[
            ("cacheDuration", json!("1s")),
            ("maxStale", json!("60s")),
            ("retryInitialInterval", json!("0.2s")),
            ("retryMaxInterval", json!("0.4s")),
        ],
    ));
    for (i, (name, _)) in modes.iter().enumerate() {
        assert_passed(&envoy.get(Some(&token(&key, &iss("warm", name)))));
        assert_eq!(warm[i].jwks_hits(), 1, "{name}");
    }
    for (i, (_, behavior)) in modes.iter().enumerate() {
        warm[i].set(behavior.clone());
    }
    for (i, (name, _)) in modes.iter().enumerate() {
        let r = envoy.get(Some(&token(&key, &iss("cold", name))));
        assert_status(&r, 401, MSG_FETCH_FAILED);
        assert!(cold[i].jwks_hits() >= 1, "{name}: fetched");
        assert_passed(&envoy.get(None));
    }
    // Each warm source's refresh and retries fail; its stale keys keep serving, and the
    // repeated identical failures make one log line.
    for (i, (name, _)) in modes.iter().enumerate() {
        let failed = format!("JWKS {}: fetch failed", warm[i].jwks_uri());
        envoy.wait_for_log(&failed, Duration::from_secs(15));
        let seen = warm[i].jwks_hits();
        warm[i].wait_for_jwks_hits(seen + 2, Duration::from_secs(15));
        assert_passed(&envoy.get(Some(&token(&key, &iss("warm", name)))));
        assert_eq!(envoy.log_count(&failed), 1, "{name}");
    }
    eprintln!(
        "MEASURE failure lines: {}",
        envoy
            .envoy
            .log()
            .lines()
            .filter(|l| l.contains("fetch failed"))
            .map(|l| l.split("mesh-authn: ").nth(1).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The IdP recovers: the next retry brings the keys, no restart needed.
    cold[0].set(Behavior::Serve(good.clone()));
    let seen = cold[0].jwks_hits();
    cold[0].wait_for_jwks_hits(seen + 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(100));
    assert_passed(&envoy.get(Some(&token(&key, &iss("cold", modes[0].0)))));
}

#[test]
fn stale_keys_stop_serving_after_max_stale() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let issuer = "https://stale.example";
    let envoy = start(&config(
        &[rule(issuer, Some(&server.jwks_uri()), &[])],
        &[&server],
        &[
            ("cacheDuration", json!("1s")),
            ("maxStale", json!("1s")),
            ("retryMaxInterval", json!("0.5s")),
            ("retryInitialInterval", json!("0.25s")),
        ],
    ));
    let good = token(&key, issuer);
    let fetched = Instant::now();
    assert_passed(&envoy.get(Some(&good)));
    server.set(Behavior::Status(503));
    server.wait_for_jwks_hits(2, Duration::from_secs(5));
    if fetched.elapsed() < Duration::from_millis(1800) {
        // Past cacheDuration (maybe), within maxStale: still served.
        assert_passed(&envoy.get(Some(&good)));
    }
    std::thread::sleep(Duration::from_millis(3000).saturating_sub(fetched.elapsed()));
    assert_status(&envoy.get(Some(&good)), 401, MSG_FETCH_FAILED);
    assert_passed(&envoy.get(None));
}

/// The issuer rotates: a token with the new `kid` is accepted at its first request (one
/// refetch), the removed key is refused, and unknown `kid`s refetch at most once per
/// `refetchInterval`.
#[test]
fn rotation_is_picked_up_by_one_refetch_within_the_rate_limit() {
    let k1 = EcIssuer::generate("k1");
    let k2 = EcIssuer::generate("k2");
    let k3 = EcIssuer::generate("k3");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&k1])));
    let issuer = "https://rotate.example";
    let envoy = start(&config(
        &[rule(issuer, Some(&server.jwks_uri()), &[])],
        &[&server],
        &[("refetchInterval", json!("3s"))],
    ));
    assert_passed(&envoy.get(Some(&token(&k1, issuer))));
    assert_eq!(server.jwks_hits(), 1);
    server.set(Behavior::Serve(jwks_of(&[&k2])));
    let rotated = Instant::now();
    assert_passed(&envoy.get(Some(&token(&k2, issuer))));
    assert_eq!(server.jwks_hits(), 2, "one refetch for the new kid");
    // The old key is gone; an unknown kid within the interval does not refetch.
    assert_status(&envoy.get(Some(&token(&k1, issuer))), 401, MSG_NO_KID);
    server.set(Behavior::Serve(jwks_of(&[&k2, &k3])));
    assert_status(&envoy.get(Some(&token(&k3, issuer))), 401, MSG_NO_KID);
    assert!(
        rotated.elapsed() < Duration::from_secs(3),
        "test too slow for its own interval"
    );
    assert_eq!(server.jwks_hits(), 2, "rate-limited");
    std::thread::sleep(Duration::from_millis(3100).saturating_sub(rotated.elapsed()));
    assert_passed(&envoy.get(Some(&token(&k3, issuer))));
    assert_eq!(server.jwks_hits(), 3);
}

#[test]
fn oidc_discovery_is_followed() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    // No jwks, no jwksUri: <issuer>/.well-known/openid-configuration names the JWKS.
    let issuer = server.base();
    let envoy = start(&config(&[rule(&issuer, None, &[])], &[&server], &[]));
    assert_passed(&envoy.get(None));
    assert_eq!(server.hits(DISCOVERY_PATH), 0);
    assert_passed(&envoy.get(Some(&token(&key, &issuer))));
    assert_passed(&envoy.get(Some(&token(&key, &issuer))));
    assert_eq!((server.hits(DISCOVERY_PATH), server.jwks_hits()), (1, 1));
    let other = EcIssuer::generate("other");
    assert_status(&envoy.get(Some(&token(&other, &issuer))), 401, MSG_NO_KID);
}

#[test]
fn an_unknown_cluster_is_one_clear_log_line_and_fails_closed() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let issuer = "https://unmapped.example";
    // No `jwks.clusters` entry: Istio's name `outbound|<port>||127.0.0.1`, which this Envoy
    // does not have.
    let envoy = start(&config(
        &[rule(issuer, Some(&server.jwks_uri()), &[])],
        &[],
        &[
            ("retryInitialInterval", json!("0.1s")),
            ("retryMaxInterval", json!("0.2s")),
        ],
    ));
    let good = token(&key, issuer);
    for _ in 0..3 {
        assert_status(&envoy.get(Some(&good)), 401, MSG_FETCH_FAILED);
        assert_passed(&envoy.get(None));
    }
    std::thread::sleep(Duration::from_millis(600)); // background retries fail alike
    let cluster = format!("outbound|{}||127.0.0.1", server.port);
    let needle = format!("Envoy cluster `{cluster}`");
    assert_eq!(envoy.log_count(&needle), 1, "{}", envoy.envoy.log());
    let line = envoy
        .envoy
        .log()
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap()
        .to_owned();
    assert!(
        line.contains(&format!("127.0.0.1:{}", server.port)),
        "{line}"
    );
    assert!(line.contains("jwks.clusters"), "{line}");
    eprintln!("MEASURE unknown cluster line: {line}");
    assert_eq!(server.jwks_hits(), 0);
}

/// Envoy runs one VM per worker: with two workers the JWKS server still sees one fetch per
/// refresh. Measured side by side with a one-worker Envoy over the same time.
#[test]
fn two_workers_fetch_once() {
    let key = EcIssuer::generate("k1");
    let issuer = "https://workers.example";
    let one = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let two = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let settings = [("cacheDuration", json!("2s"))];
    let envoy_one = start_with(
        &config(
            &[rule(issuer, Some(&one.jwks_uri()), &[])],
            &[&one],
            &settings,
        ),
        1,
    );
    let envoy_two = start_with(
        &config(
            &[rule(issuer, Some(&two.jwks_uri()), &[])],
            &[&two],
            &settings,
        ),
        2,
    );
    let good = token(&key, issuer);
    let burst = |envoy: &Running| {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..20)
                .map(|_| s.spawn(|| envoy.get(Some(&good))))
                .collect();
            for h in hs {
                assert_passed(&h.join().unwrap());
            }
        })
    };
    let t0 = Instant::now();
    burst(&envoy_one);
    burst(&envoy_two);
    assert_eq!(
        (one.jwks_hits(), two.jwks_hits()),
        (1, 1),
        "first use: one fetch each"
    );
    // Both workers served requests.
    let stats = envoy_two.envoy.stats();
    let per_worker: Vec<u64> = (0..2)
        .map(|w| {
            stats
                .lines()
                .filter(|l| l.contains(&format!(".worker_{w}.downstream_cx_total:")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum()
        })
        .collect();
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both workers used: {per_worker:?}"
    );
    std::thread::sleep(Duration::from_millis(4500).saturating_sub(t0.elapsed()));
    burst(&envoy_one);
    burst(&envoy_two);
    let (h1, h2) = (one.jwks_hits(), two.jwks_hits());
    eprintln!(
        "MEASURE over {:?} with cacheDuration 2s: one worker {h1} fetches, two workers {h2} \
         fetches; connections per worker {per_worker:?}",
        t0.elapsed()
    );
    assert!(h1 >= 3, "background refreshes happened: {h1}");
    assert!(
        h2 <= h1 + 1,
        "two workers fetch no more than one: {h2} vs {h1}"
    );
}

#[test]
fn the_remote_jwks_example_validates_in_envoy() {
    let example =
        std::fs::read_to_string(host_tests::workspace_root().join("examples/remote-jwks.yaml"))
            .unwrap();
    let (ok, output) = validate_template(TEMPLATE, &example, 9);
    assert!(ok, "{output}");
    assert!(output.contains("configured: workload foo"), "{output}");
}

/// A rotation seen by one worker is seen by all: with two workers, tokens with the new `kid`
/// on either worker cause one refetch in total.
#[test]
fn rotation_with_two_workers_refetches_once() {
    let k1 = EcIssuer::generate("k1");
    let k2 = EcIssuer::generate("k2");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&k1])));
    let issuer = "https://rotate-workers.example";
    let envoy = start_with(
        &config(
            &[rule(issuer, Some(&server.jwks_uri()), &[])],
            &[&server],
            &[],
        ),
        2,
    );
    for r in burst(&envoy, 20, Some(&token(&k1, issuer))) {
        assert_passed(&r);
    }
    assert_eq!(server.jwks_hits(), 1);
    server.set(Behavior::Serve(jwks_of(&[&k2])));
    for r in burst(&envoy, 20, Some(&token(&k2, issuer))) {
        assert_passed(&r);
    }
    assert_eq!(server.jwks_hits(), 2, "one refetch for both workers");
    // A worker that saw no k2 token takes the new set at its next tick, within 1 s.
    std::thread::sleep(Duration::from_millis(1500));
    for r in burst(&envoy, 20, Some(&token(&k1, issuer))) {
        assert_status(&r, 401, MSG_NO_KID);
    }
    assert_eq!(server.jwks_hits(), 2);
}

/// A client that gives up while its request waits for keys leaves nothing behind: the VM keeps
/// serving, and the fetch it started still fills the cache.
#[test]
fn a_request_abandoned_while_waiting_is_forgotten() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Hang(Duration::from_millis(700)));
    let issuer = "https://abandon.example";
    let envoy = start(&config(
        &[rule(
            issuer,
            Some(&server.jwks_uri()),
            &[("timeout", json!("3s"))],
        )],
        &[&server],
        &[],
    ));
    let good = token(&key, issuer);
    {
        use std::io::Write as _;
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", envoy.envoy.port())).unwrap();
        write!(
            conn,
            "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n\r\n"
        )
        .unwrap();
        server.wait_for_jwks_hits(1, Duration::from_secs(5));
    } // closed while paused
    assert_passed(&envoy.get(None));
    server.set(Behavior::Serve(jwks_of(&[&key])));
    // The hanging fetch ends (empty reply after 700 ms) and fails; the retry brings the keys.
    server.wait_for_jwks_hits(2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(100));
    assert_passed(&envoy.get(Some(&good)));
    assert_eq!(server.jwks_hits(), 2);
}

// ---------------------------------------------------------------- faults, two workers

const ALIVE_ISSUER: &str = "https://alive.example";

/// The VM is alive on both workers: a dozen fresh connections each way (the kernel spreads new
/// connections over the two workers' listen sockets; a dead VM answers 503 on its worker), a
/// valid token of the healthy `alive` rule passes and a forged one is refused. That no VM
/// failed, the harness's teardown checks.
fn assert_alive(case: &str, envoy: &Running, alive: &EcIssuer) {
    let good = token(alive, ALIVE_ISSUER);
    let forged = tokens::corrupt_signature(&good);
    for _ in 0..12 {
        let r = envoy.get(Some(&good));
        assert_eq!(r.status, 200, "{case}: valid token afterwards: {r:?}");
        let r = envoy.get(Some(&forged));
        assert_eq!(
            (r.status, r.body.as_str()),
            (401, MSG_BAD_SIGNATURE),
            "{case}: forged token afterwards"
        );
    }
}

/// `n` requests at once with `token` (fresh connections: both workers).
fn burst(envoy: &Running, n: usize, token: Option<&str>) -> Vec<Response> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n).map(|_| s.spawn(|| envoy.get(token))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A JWKS server that answers byte by byte: slower than the rule's timeout, the fetch fails
/// (tokens 401 `Jwks remote fetch is failed`, requests without a token pass); within it, the
/// keys arrive and tokens pass.
#[test]
fn a_jwks_trickled_byte_by_byte_fails_past_the_timeout_and_passes_within_it() {
    let key = EcIssuer::generate("k1");
    let alive = EcIssuer::generate("alive");
    let doc = jwks_of(&[&key]);
    // ~250 bytes: 50 ms a byte is ~12 s against a 1 s timeout; 2 ms a byte is ~0.5 s
    // against 10 s.
    let slow = JwksServer::start(Behavior::Trickle {
        doc: doc.clone(),
        every: Duration::from_millis(50),
    });
    let in_time = JwksServer::start(Behavior::Trickle {
        doc: doc.clone(),
        every: Duration::from_millis(2),
    });
    let healthy = JwksServer::start(Behavior::Serve(jwks_of(&[&alive])));
    let envoy = start_with(
        &config(
            &[
                rule(
                    "https://slow.example",
                    Some(&slow.jwks_uri()),
                    &[("timeout", json!("1s"))],
                ),
                rule(
                    "https://intime.example",
                    Some(&in_time.jwks_uri()),
                    &[("timeout", json!("10s"))],
                ),
                rule(ALIVE_ISSUER, Some(&healthy.jwks_uri()), &[]),
            ],
            &[&slow, &in_time, &healthy],
            &[
                ("retryInitialInterval", json!("5s")),
                ("retryMaxInterval", json!("10s")),
            ],
        ),
        2,
    );
    let slow_token = token(&key, "https://slow.example");
    for r in burst(&envoy, 6, Some(&slow_token)) {
        assert_status(&r, 401, MSG_FETCH_FAILED);
    }
    assert!(slow.jwks_hits() >= 1);
    assert!(
        doc.len() as u64 * 50 > 1000 * 5,
        "the slow body takes far longer than the timeout"
    );
    for r in burst(&envoy, 6, None) {
        assert_passed(&r);
    }
    let in_time_token = token(&key, "https://intime.example");
    for r in burst(&envoy, 6, Some(&in_time_token)) {
        assert_passed(&r);
    }
    assert_eq!(in_time.jwks_hits(), 1, "one fetch for both workers");
    assert_status(
        &envoy.get(Some(&tokens::corrupt_signature(&in_time_token))),
        401,
        MSG_BAD_SIGNATURE,
    );
    assert_alive("trickle", &envoy, &alive);
}

/// A JWKS server that returns a different key set on every fetch. A token of the key the
/// server serves now passes after at most one refetch; unknown `kid`s from both workers cause
/// no fetch storm: at most one refetch per `refetchInterval`.
#[test]
fn a_different_key_set_on_every_fetch_causes_no_fetch_storm() {
    let keys: Vec<EcIssuer> = (0..6)
        .map(|i| EcIssuer::generate(&format!("k{i}")))
        .collect();
    let alive = EcIssuer::generate("alive");
    let server = JwksServer::start(Behavior::Cycle(
        keys.iter().map(|k| jwks_of(&[k])).collect(),
    ));
    let healthy = JwksServer::start(Behavior::Serve(jwks_of(&[&alive])));
    let issuer = "https://cycle.example";
    let envoy = start_with(
        &config(
            &[
                rule(issuer, Some(&server.jwks_uri()), &[]),
                rule(ALIVE_ISSUER, Some(&healthy.jwks_uri()), &[]),
            ],
            &[&server, &healthy],
            &[("refetchInterval", json!("4s"))],
        ),
        2,
    );
    // Fetch 0 serves k0.
    for r in burst(&envoy, 10, Some(&token(&keys[0], issuer))) {
        assert_passed(&r);
    }
    assert_eq!(server.jwks_hits(), 1);
    // The server now serves k1: its tokens pass after one refetch (fetch 1 serves k1).
    let rotated = Instant::now();
    for r in burst(&envoy, 10, Some(&token(&keys[1], issuer))) {
        assert_passed(&r);
    }
    assert_eq!(server.jwks_hits(), 2, "one refetch for both workers");
    // A storm of unknown kids (k2..k5) from both workers within the interval: refused, and
    // no fetch at all; the current key keeps passing.
    let storm: Vec<String> = keys[2..].iter().map(|k| token(k, issuer)).collect();
    let results: Vec<Response> = std::thread::scope(|s| {
        let envoy = &envoy;
        let hs: Vec<_> = (0..40)
            .map(|i| {
                let t = &storm[i % storm.len()];
                s.spawn(move || envoy.get(Some(t)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert_status(r, 401, MSG_NO_KID);
    }
    for r in burst(&envoy, 10, Some(&token(&keys[1], issuer))) {
        assert_passed(&r);
    }
    assert!(
        rotated.elapsed() < Duration::from_secs(4),
        "test too slow for its own interval"
    );
    assert_eq!(server.jwks_hits(), 2, "rate-limited: no storm");
    // After the interval, the server's current key (fetch 2 serves k2) passes after one
    // refetch, and k1, gone from the set, is refused without another fetch.
    std::thread::sleep(Duration::from_millis(4100).saturating_sub(rotated.elapsed()));
    for r in burst(&envoy, 10, Some(&token(&keys[2], issuer))) {
        assert_passed(&r);
    }
    assert_eq!(server.jwks_hits(), 3);
    // The k2 tokens may all have reached the worker that fetched; the other one takes the
    // new set at its next tick, within 1 s (README "Remote JWKS", rotation), and until then
    // still accepts k1. Past that tick, k1 is refused by both (still inside the interval, so
    // without a fetch).
    std::thread::sleep(Duration::from_millis(1500));
    for r in burst(&envoy, 10, Some(&token(&keys[1], issuer))) {
        assert_status(&r, 401, MSG_NO_KID);
    }
    assert_eq!(server.jwks_hits(), 3);
    assert_alive("cycle", &envoy, &alive);
}

/// The JWKS server dies in the middle of a response (the process is gone: the connection is
/// cut and the port refuses). Requests paused on the fetch get 401 `Jwks remote fetch is
/// failed`, requests without a token pass, later tokens keep failing closed, and a set fetched
/// earlier from another (healthy) source keeps serving.
#[test]
fn a_jwks_server_killed_mid_response_fails_closed() {
    let key = EcIssuer::generate("k1");
    let alive = EcIssuer::generate("alive");
    let mut server = JwksServer::start(Behavior::Trickle {
        doc: jwks_of(&[&key]),
        every: Duration::from_millis(40),
    });
    let healthy = JwksServer::start(Behavior::Serve(jwks_of(&[&alive])));
    let issuer = "https://dies.example";
    let envoy = start_with(
        &config(
            &[
                rule(
                    issuer,
                    Some(&server.jwks_uri()),
                    &[("timeout", json!("30s"))],
                ),
                rule(ALIVE_ISSUER, Some(&healthy.jwks_uri()), &[]),
            ],
            &[&server, &healthy],
            &[
                ("retryInitialInterval", json!("0.2s")),
                ("retryMaxInterval", json!("0.4s")),
            ],
        ),
        2,
    );
    assert_passed(&envoy.get(Some(&token(&alive, ALIVE_ISSUER))));
    let good = token(&key, issuer);
    let paused: Vec<Response> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6).map(|_| s.spawn(|| envoy.get(Some(&good)))).collect();
        // Mid-response: the headers and some of the body are out.
        server.wait_for_jwks_hits(1, Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(600));
        server.kill();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &paused {
        assert_status(r, 401, MSG_FETCH_FAILED);
    }
    let failed = format!("JWKS {}: fetch failed", server.jwks_uri());
    envoy.wait_for_log(&failed, Duration::from_secs(10));
    // Retries meet a refused port: still failing closed, one log line for the repeats.
    std::thread::sleep(Duration::from_millis(1000));
    for r in burst(&envoy, 6, Some(&good)) {
        assert_status(&r, 401, MSG_FETCH_FAILED);
    }
    for r in burst(&envoy, 6, None) {
        assert_passed(&r);
    }
    assert_eq!(server.jwks_hits(), 1, "nothing reached a dead server");
    eprintln!(
        "MEASURE killed mid-response: {} `fetch failed` line(s)",
        envoy.log_count(&failed)
    );
    assert_alive("killed", &envoy, &alive);
}

/// The test-only hostile neighbour (`host-tests/shared-data-writer`), built by `make wasm`.
fn shared_data_writer_wasm() -> std::path::PathBuf {
    host_tests::built_wasm("shared-data-writer")
}

/// A Wasm HTTP filter in the template's indentation, with `vm_id: mesh-authn` (the same
/// shared-data namespace as mesh-authn's, as every `WasmPlugin` on an Istio proxy has).
fn wasm_filter_yaml(
    name: &str,
    root_id: &str,
    wasm: &std::path::Path,
    configuration: &str,
) -> String {
    format!(
        "          - name: {name}
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {root_id}
                vm_config:
                  vm_id: mesh-authn
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local: {{filename: {}}}
                configuration:
                  \"@type\": type.googleapis.com/google.protobuf.StringValue
                  value: {}
                failure_policy: FAIL_CLOSED
",
        yaml_string_literal(&wasm.to_string_lossy()),
        yaml_string_literal(configuration)
    )
}

/// Envoy with `writer_config` loaded into the shared-data writer, a second Wasm filter in
/// front of mesh-authn with the same `vm_id`.
fn start_with_writer(config: &str, writer_config: &str) -> Running {
    let writer = wasm_filter_yaml(
        "writer",
        "writer",
        &shared_data_writer_wasm(),
        writer_config,
    );
    start_with_filters_before(config, &writer)
}

/// Envoy from the template with mesh-authn configured by `config` and `filters` (YAML list
/// items) inserted in front of it.
fn start_with_filters_before(config: &str, filters: &str) -> Running {
    let upstream = EchoUpstream::start();
    let wasm = host_tests::wasm_path();
    let port = upstream.port.to_string();
    let rendered = host_tests::render_envoy_template(
        TEMPLATE,
        &[
            ("ADMIN_PORT", "0"),
            ("LISTEN_PORT", "0"),
            ("UPSTREAM_PORT", &port),
            ("WASM_PATH", &wasm.to_string_lossy()),
            ("PLUGIN_CONFIG", &yaml_string_literal(config)),
        ],
    );
    let anchor = "          - name: mesh-authn\n";
    assert_eq!(rendered.matches(anchor).count(), 1, "{rendered}");
    let rendered = rendered.replace(anchor, &format!("{filters}{anchor}"));
    let options = Options {
        template: TEMPLATE.to_owned(),
        log_level: std::env::var("ENVOY_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        ..Options::default()
    };
    let envoy = Envoy::start_config(&rendered, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    Running {
        envoy,
        _upstream: upstream,
    }
}

/// Another plugin in the same Envoy and `vm_id` keeps writing forged JWKS records with its
/// own key set: under the names mesh-authn used to derive from the URL alone (a state with a
/// high version and keys "fetched" in 2096, and its body), and, under the names it would have
/// to guess now (computed here from the exact configuration, which it should not know),
/// records whose MAC is made with another configuration's key or is zeros, one holding a
/// lease forever. Expected (issue 14): the attacker's token is refused, the IdP is fetched,
/// its token passes.
#[test]
fn records_forged_by_another_plugin_in_the_same_vm_id_are_not_trusted() {
    use mesh_authn::remote_jwks::seal::Seal;

    let real = EcIssuer::generate("k1");
    // The same `kid`: only the key set decides which key verifies.
    let attacker = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&real])));
    let issuer = "https://forged.example";
    let config = config(
        &[rule(issuer, Some(&server.jwks_uri()), &[])],
        &[&server],
        &[],
    );
    let source = format!("jwks_uri {}", server.jwks_uri());
    let attacker_jwks = jwks_of(&[&attacker]);
    // The record format mesh-authn wrote before records were sealed: format line, version,
    // fetched_at, lease_until, failures, retry_at, kid_refetch_at, used, digest, jwks_uri,
    // error.
    let fresh_forever = "mesh-authn jwks state 1\n1000\n4000000000000\n0\n0\n0\n0\n1\nforged\n\n";
    let lease_forever =
        "mesh-authn jwks state 1\n1000\n4000000000000\n4000000000000\n0\n0\n0\n1\nforged\n\n";
    let body = format!("1000\n{attacker_jwks}");
    // Names now: keyed by the root id and the exact configuration bytes.
    let ours = Seal::new(b"mesh-authn", config.as_bytes());
    let other = Seal::new(b"mesh-authn", b"a configuration the attacker knows");
    let (state_name, body_name) = (ours.name("state", &source), ours.name("body", &source));
    let zero_mac = "0".repeat(64);
    let records = [
        (
            format!("mesh-authn.jwks.state {source}"),
            fresh_forever.to_owned(),
        ),
        (format!("mesh-authn.jwks.body {source}"), body.clone()),
        (
            state_name.clone(),
            String::from_utf8(other.seal(&state_name, lease_forever.as_bytes())).unwrap(),
        ),
        (body_name.clone(), format!("{zero_mac}\n{body}")),
    ];
    let writer_config: Vec<String> = records
        .iter()
        .map(|(name, value)| format!("{name}\n{value}"))
        .collect();
    let envoy = start_with_writer(&config, &writer_config.join("\n---\n"));
    envoy.wait_for_log(
        "shared-data-writer: writing 4 records",
        Duration::from_secs(5),
    );

    let r = envoy.get(Some(&token(&attacker, issuer)));
    assert_eq!(r.status, 401, "the attacker's token: {r:?}");
    assert!(server.jwks_hits() >= 1, "the IdP was never fetched");
    assert_passed(&envoy.get(Some(&token(&real, issuer))));
    // Still so after the writer has overwritten everything again, many times.
    std::thread::sleep(Duration::from_millis(200));
    assert_passed(&envoy.get(Some(&token(&real, issuer))));
    let r = envoy.get(Some(&token(&attacker, issuer)));
    assert_eq!(r.status, 401, "the attacker's token: {r:?}");
}

/// Two rules at different locations: rule A's keys come from a JWKS server that never answers
/// (timeout 1 s), rule B's are inline. A request carrying a token for each is decided by
/// Istio's requirement tree once A's fetch fails (`requires_any[A, B, requires_all[…]]`: B's
/// valid token is enough). The oracle is native `jwt_authn` configured as istiod does in
/// Envoy-fetch mode (`remote_jwks` for A), run side by side on the same requests.
#[test]
fn a_rule_whose_keys_time_out_does_not_hide_another_rules_valid_token() {
    use host_tests::istio_native;

    let a_key = EcIssuer::generate("a1");
    let b_key = EcIssuer::generate("b1");
    let hang = JwksServer::start(Behavior::Hang(Duration::from_secs(5)));
    let (a_iss, b_iss) = ("https://a-hang.example", "https://b-inline.example");
    let b_jwks = jwks_of(&[&b_key]);

    // Native: istiod's translation (rules sorted by issuer: A is origins-0), A's keys remote.
    let policy = Policy::new(
        "remote",
        vec![
            Rule {
                issuer: a_iss.into(),
                jwks: jwks_of(&[&a_key]),
                from_headers: vec![("x-a", "")],
                ..Rule::default()
            },
            Rule {
                issuer: b_iss.into(),
                jwks: b_jwks.clone(),
                ..Rule::default()
            },
        ],
    );
    let mut jwt_authn = istio_native::native_jwt_authn(&[policy]).unwrap();
    let a = &mut jwt_authn["typed_config"]["providers"]["origins-0"];
    assert_eq!(a["issuer"], a_iss);
    a.as_object_mut().unwrap().remove("local_jwks");
    a["remote_jwks"] = json!({
        "http_uri": {"uri": hang.jwks_uri(), "cluster": "hang", "timeout": "1s"},
        "cache_duration": "300s",
    });
    let native_upstream = EchoUpstream::start();
    let mut bootstrap: serde_json::Value = serde_json::from_str(&istio_native::native_bootstrap(
        Some(jwt_authn),
        native_upstream.port,
    ))
    .unwrap();
    bootstrap["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "name": "hang", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "hang", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address":
                    {"address": "127.0.0.1", "port_value": hang.port}}}}
            ]}]}
        }));
    let native = Envoy::start_config(&bootstrap.to_string(), &Options::default())
        .unwrap_or_else(|e| panic!("native Envoy did not start: {e}"));

    let ours = start(&config(
        &[
            rule(
                a_iss,
                Some(&hang.jwks_uri()),
                &[
                    ("fromHeaders", json!([{"name": "x-a"}])),
                    ("timeout", json!("1s")),
                ],
            ),
            rule(b_iss, None, &[("jwks", json!(b_jwks))]),
        ],
        &[&hang],
        &[],
    ));

    let a_token = token(&a_key, a_iss);
    let b_bearer = format!("Bearer {}", token(&b_key, b_iss));
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "both tokens",
            vec![("x-a", &a_token), ("authorization", &b_bearer)],
        ),
        ("only A's token", vec![("x-a", &a_token)]),
        ("only B's token", vec![("authorization", &b_bearer)]),
    ];
    let mut got = Vec::new();
    for (name, headers) in &cases {
        let n = http::get(native.port(), "/", headers);
        let o = http::get(ours.envoy.port(), "/", headers);
        assert_eq!(
            (o.status, o.body.as_str() == MSG_FETCH_FAILED),
            (n.status, n.body.as_str() == MSG_FETCH_FAILED),
            "{name}: ours {o:?}\nnative {n:?}"
        );
        got.push((*name, n.status));
    }
    // What native said, so the comparison above cannot pass vacuously.
    assert_eq!(
        got,
        [
            ("both tokens", 200),
            ("only A's token", 401),
            ("only B's token", 200)
        ]
    );
}

/// An IdP's published key set with a symmetric (`oct`) key next to its public key: anyone who
/// downloads the set could mint HS256 tokens with it. By default such a token is refused (the
/// key is dropped, with one log line per key set) while the public key keeps working;
/// `jwks.allowSymmetricKeys: true` accepts it.
#[test]
fn symmetric_keys_in_a_fetched_set_are_refused_unless_allowed() {
    let key = EcIssuer::generate("k1");
    let secret = b"a secret published in a public key set";
    let mut jwks: serde_json::Value = serde_json::from_str(&jwks_of(&[&key])).unwrap();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kty": "oct", "kid": "h1", "alg": "HS256", "k": tokens::b64url(secret),
        }));
    let server = JwksServer::start(Behavior::Serve(jwks.to_string()));
    let issuer = "https://symmetric.example";
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("h1".into());
    let hs256 = jsonwebtoken::encode(
        &header,
        &claims(issuer, None, 600),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    let rules = [rule(issuer, Some(&server.jwks_uri()), &[])];

    let envoy = start(&config(&rules, &[&server], &[]));
    assert_status(&envoy.get(Some(&hs256)), 401, MSG_NO_KID);
    assert_passed(&envoy.get(Some(&token(&key, issuer))));
    assert_status(&envoy.get(Some(&hs256)), 401, MSG_NO_KID);
    assert_eq!(envoy.log_count("ignoring 1 symmetric (`oct`) keys"), 1);
    drop(envoy);

    let envoy = start(&config(
        &rules,
        &[&server],
        &[("allowSymmetricKeys", json!(true))],
    ));
    assert_passed(&envoy.get(Some(&hs256)));
    assert_passed(&envoy.get(Some(&token(&key, issuer))));
}

/// Two mesh-authn plugins on one proxy, same `vm_id` and root id, same `jwksUri`, but
/// configurations that differ (in `cacheDuration` only): each keys its own records, so each
/// fetches the key set itself (with shared records there would be one fetch). Both forward
/// the token so both verify it.
#[test]
fn two_plugins_with_different_configurations_do_not_share_records() {
    let key = EcIssuer::generate("k1");
    let server = JwksServer::start(Behavior::Serve(jwks_of(&[&key])));
    let issuer = "https://two-plugins.example";
    let rules = [rule(
        issuer,
        Some(&server.jwks_uri()),
        &[("forwardOriginalToken", json!(true))],
    )];
    let first = config(&rules, &[&server], &[("cacheDuration", json!("301s"))]);
    let second = config(&rules, &[&server], &[]);
    let other = wasm_filter_yaml(
        "mesh-authn-other",
        "mesh-authn",
        &host_tests::wasm_path(),
        &first,
    );
    let envoy = start_with_filters_before(&second, &other);
    let good = token(&key, issuer);
    assert_passed(&envoy.get(Some(&good)));
    assert_passed(&envoy.get(Some(&good)));
    assert_eq!(server.jwks_hits(), 2);
}
