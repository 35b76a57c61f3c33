//! The filter's counters, read back from Envoy's admin `/stats` after a known mix of requests
//! (the expected numbers are the requests of each kind sent), and the README's list of
//! counters compared with the names Envoy shows.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use host_tests::certs::TestPki;
use host_tests::envoy::{Envoy, Options};
use host_tests::http;
use host_tests::jwks_server::{Behavior, JwksServer};
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::plugin_config::{PeerPolicy, PluginConfig, Policy, Rule, WORKLOAD_NS};
use host_tests::servers::EchoUpstream;
use host_tests::tls::{self, Outcome};
use host_tests::tokens::{self, claims, EcIssuer, RsaIssuer};
use serde_json::{json, Value};

static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);

/// The counter names the README's "Counters" section documents: its table's names, with
/// `<reason>` replaced by each reason of its "Each `<reason>`" list and `<issuer>` by each of
/// `issuers` (already as stat-name elements).
fn readme_counters(issuers: &[&str]) -> BTreeSet<String> {
    let readme = std::fs::read_to_string(host_tests::workspace_root().join("README.md")).unwrap();
    let start = readme
        .find("\n### Counters\n")
        .expect("README has ### Counters");
    let section = &readme[start + 1..];
    let end = section.find("\n## ").unwrap_or(section.len());
    let section = &section[..end];
    let ticked = |line: &str| -> Vec<String> {
        line.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let patterns: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| `mesh_authn."))
        .map(|l| ticked(l).remove(0))
        .collect();
    let mut reasons = Vec::new();
    let mut in_reasons = false;
    for line in section.lines() {
        if line.starts_with("Each `<reason>`") {
            in_reasons = true;
        } else if in_reasons && line.starts_with("- ") {
            // `- what: `reason`, `reason`;`: the reasons follow the last colon.
            let list = line.rsplit_once(": ").map_or(line, |(_, list)| list);
            reasons.extend(ticked(list));
        } else if in_reasons {
            break;
        }
    }
    assert!(
        patterns.len() >= 6 && reasons.len() > 60,
        "{patterns:?} {reasons:?}"
    );
    let mut names = BTreeSet::new();
    for p in patterns {
        if p.contains("<reason>") {
            names.extend(reasons.iter().map(|r| p.replace("<reason>", r)));
        } else if p.contains("<issuer>") {
            names.extend(issuers.iter().map(|i| p.replace("<issuer>", i)));
        } else {
            names.insert(p);
        }
    }
    names
}

/// Every `mesh_authn` counter Envoy shows is in the README, and every README counter (for
/// these issuers) is in Envoy's `/stats`.
fn assert_readme_lists_exactly_the_counters(envoy: &Envoy, issuers: &[&str]) {
    let documented = readme_counters(issuers);
    let shown: BTreeSet<String> = envoy
        .stats()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(n, _)| n.strip_prefix("wasmcustom."))
        .filter(|n| n.starts_with("mesh_authn."))
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<&String> = shown.difference(&documented).collect();
    let missing: Vec<&String> = documented.difference(&shown).collect();
    assert!(
        undocumented.is_empty() && missing.is_empty(),
        "counters Envoy shows that the README does not list: {undocumented:?}\n\
         README counters Envoy does not show: {missing:?}"
    );
}

/// Compares `wasmcustom.mesh_authn.<name>` with each expected value.
fn assert_counters(envoy: &Envoy, want: &[(&str, u64)]) {
    let want: Vec<(String, u64)> = want
        .iter()
        .map(|(name, value)| (format!("wasmcustom.mesh_authn.{name}"), *value))
        .collect();
    envoy.assert_stats(&want, &["mesh_authn"]);
}

/// README "Counters" says how far behind `/stats` can be: the filter's flush period, which
/// [`Envoy::assert_stats`] waits out in these tests.
#[test]
fn the_readme_states_the_flush_period_of_the_counters() {
    let readme = std::fs::read_to_string(host_tests::workspace_root().join("README.md")).unwrap();
    let words = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let period = mesh_authn::counters::FLUSH_MS;
    assert_eq!(period % 1000, 0, "README gives the period in seconds");
    let want = format!(
        "added to Envoy's counters on the plugin's tick, at most {} s apart",
        period / 1000
    );
    assert!(words.contains(&want), "README lacks {want:?}");
}

#[test]
fn counters_by_outcome_reason_and_issuer() {
    let a = RsaIssuer::generate("a");
    let b = RsaIssuer::generate("b");
    let rule = |iss: &str, key: &RsaIssuer, header: &'static str| Rule {
        issuer: iss.into(),
        audiences: vec!["svc"],
        jwks: tokens::jwks_json(&[key.jwk()]),
        extra: vec![("fromHeaders", json!([{ "name": header }]))],
        ..Rule::default()
    };
    let config = PluginConfig::new()
        .workload(WORKLOAD_NS, &[])
        .policy(&Policy::new(
            "p",
            vec![
                rule("https://a.example.com", &a, "x-a"),
                rule("https://b.example.com", &b, "x-b"),
            ],
        ))
        .render();
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

    assert_counters(
        &envoy,
        &[
            ("allowed", 5),
            ("denied", 3),
            ("cors_preflight_bypassed", 1),
            ("denied.jwt_expired", 1),
            ("denied.jwt_audience_not_allowed", 1),
            ("denied.jwt_bad_format", 1),
            ("denied.jwt_verification_fail", 0),
            ("denied.internal_error", 0),
            ("denied.strict_mtls_no_client_certificate", 0),
            ("issuer.https___a_example_com.allowed", 2),
            ("issuer.https___b_example_com.allowed", 1),
            ("issuer.https___a_example_com.denied", 2),
            ("issuer.https___b_example_com.denied", 1),
        ],
    );
    assert_readme_lists_exactly_the_counters(
        &envoy,
        &["https___a_example_com", "https___b_example_com"],
    );
}

/// The connections the PeerAuthentication tests use.
#[derive(Debug, Clone, Copy)]
enum Conn {
    Plaintext,
    MtlsGood,
    MtlsOtherTrustDomain,
    MtlsNoUriSan,
}

fn send(conn: Conn, port: u16, headers: &[(&str, &str)]) -> u16 {
    let client = match conn {
        Conn::Plaintext => return http::get(port, "/", headers).status,
        Conn::MtlsGood => &PKI.client_good,
        Conn::MtlsOtherTrustDomain => &PKI.client_other_trust_domain,
        Conn::MtlsNoUriSan => &PKI.client_no_uri_san,
    };
    match tls::get(port, "/", headers, &PKI.ca.cert_der, Some(client)) {
        Outcome::Response(r) => r.status,
        Outcome::Refused(why) => panic!("{conn:?}: connection refused: {why}"),
    }
}

fn peer_authentication(spec: Value) -> PeerPolicy {
    PeerPolicy {
        name: "default",
        namespace: WORKLOAD_NS,
        spec,
    }
}

#[test]
fn peer_and_jwt_denials_are_counted_alike() {
    let key = RsaIssuer::generate("k");
    let jwks = tokens::jwks_json(&[key.jwk()]);
    let iss = "https://issuer.example";
    let config = move |port_a: u16, _port_b: u16| {
        let mut ports = serde_json::Map::new();
        ports.insert(port_a.to_string(), json!({"mode": "STRICT"}));
        PluginConfig::new()
            .set("trustDomain", json!("cluster.local"))
            .peer_policy(&peer_authentication(json!({
                "selector": {"matchLabels": {"app": "httpbin"}},
                "mtls": {"mode": "PERMISSIVE"},
                "portLevelMtls": ports,
            })))
            .policy(&Policy::new(
                "jwt",
                vec![Rule {
                    issuer: iss.into(),
                    jwks: jwks.clone(),
                    ..Rule::default()
                }],
            ))
            .render()
    };
    let upstream = EchoUpstream::start();
    let setup = MtlsEnvoy::start(&PKI, upstream.port, config)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let (strict, permissive) = (setup.port_a, setup.port_b);
    let bearer = |t: String| format!("Bearer {t}");
    let valid = bearer(key.mint(claims(iss, None, 600)));
    let expired = bearer(key.mint(claims(iss, None, -600)));
    let mut got = Vec::new();
    let mut go = |what: &'static str, conn: Conn, port: u16, token: Option<&str>| {
        let headers: Vec<(&str, &str)> = token.map_or(Vec::new(), |t| vec![("authorization", t)]);
        got.push((what, send(conn, port, &headers)));
    };
    // 3 JWT denials, on the PERMISSIVE port.
    go("expired", Conn::Plaintext, permissive, Some(&expired));
    go("expired", Conn::Plaintext, permissive, Some(&expired));
    go(
        "bad format",
        Conn::Plaintext,
        permissive,
        Some("Bearer not-a-jwt"),
    );
    // 4 STRICT refusals, of three kinds.
    go("strict, plaintext", Conn::Plaintext, strict, Some(&valid));
    go("strict, plaintext", Conn::Plaintext, strict, None);
    go(
        "strict, other trust domain",
        Conn::MtlsOtherTrustDomain,
        strict,
        None,
    );
    go("strict, no URI SAN", Conn::MtlsNoUriSan, strict, None);
    // 3 allowed.
    go("valid", Conn::Plaintext, permissive, Some(&valid));
    go("no token", Conn::Plaintext, permissive, None);
    go(
        "strict, good peer, valid",
        Conn::MtlsGood,
        strict,
        Some(&valid),
    );
    let want = [401, 401, 401, 403, 403, 403, 403, 200, 200, 200];
    let statuses: Vec<u16> = got.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, want, "{got:?}");
    assert_counters(
        &setup.envoy,
        &[
            ("allowed", 3),
            ("denied", 7),
            ("denied.jwt_expired", 2),
            ("denied.jwt_bad_format", 1),
            ("denied.strict_mtls_no_client_certificate", 2),
            ("denied.strict_mtls_foreign_trust_domain", 1),
            ("denied.strict_mtls_no_spiffe_id", 1),
            ("denied.internal_error", 0),
            ("issuer.https___issuer_example.allowed", 2),
            ("issuer.https___issuer_example.denied", 3),
        ],
    );
    assert_readme_lists_exactly_the_counters(&setup.envoy, &["https___issuer_example"]);
}

#[test]
fn a_configuration_with_only_peer_authentication_counts() {
    let config = |_: u16, _: u16| {
        PluginConfig::new()
            .workload(WORKLOAD_NS, &[])
            .peer_policy(&peer_authentication(json!({"mtls": {"mode": "STRICT"}})))
            .render()
    };
    let upstream = EchoUpstream::start();
    let setup = MtlsEnvoy::start(&PKI, upstream.port, config)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let port = setup.port_a;
    assert_eq!(send(Conn::Plaintext, port, &[]), 403);
    assert_eq!(send(Conn::Plaintext, port, &[]), 403);
    assert_eq!(send(Conn::MtlsGood, port, &[]), 200);
    assert_counters(
        &setup.envoy,
        &[
            ("allowed", 1),
            ("denied", 2),
            ("denied.strict_mtls_no_client_certificate", 2),
        ],
    );
    assert_readme_lists_exactly_the_counters(&setup.envoy, &[]);
}

#[test]
fn requests_decided_after_a_key_fetch_are_counted_once() {
    let key = EcIssuer::generate("k");
    let good = JwksServer::start(Behavior::Serve(tokens::jwks_json(&[key.jwk()])));
    let failing = JwksServer::start(Behavior::Status(500));
    let rule = |iss: &str, server: &JwksServer| Rule {
        issuer: iss.into(),
        jwks_uri: Some(server.jwks_uri()),
        ..Rule::default()
    };
    let config = PluginConfig::new()
        .workload(WORKLOAD_NS, &[])
        .jwks(
            &[(good.authority(), "jwks"), (failing.authority(), "jwks")],
            &[],
        )
        .policy(&Policy::new(
            "remote",
            vec![
                rule("https://good.example", &good),
                rule("https://failing.example", &failing),
            ],
        ))
        .render();
    let upstream = EchoUpstream::start();
    let options = Options {
        template: "mesh-authn-remote-jwks.yaml".to_owned(),
        ..Options::default()
    };
    let envoy = Envoy::start_with(&config, upstream.port, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let get = |iss: &str| {
        let token = format!("Bearer {}", key.mint(claims(iss, None, 600)));
        http::get(envoy.port(), "/", &[("authorization", &token)])
    };
    // Paused on the first fetch and resumed, then served from the cache.
    assert_eq!(get("https://good.example").status, 200);
    assert_eq!(get("https://good.example").status, 200);
    // Paused on a fetch that fails, then answered.
    let r = get("https://failing.example");
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, "Jwks remote fetch is failed")
    );
    assert_counters(
        &envoy,
        &[
            ("allowed", 2),
            ("denied", 1),
            ("denied.jwks_fetch_fail", 1),
            ("issuer.https___good_example.allowed", 2),
            ("issuer.https___good_example.denied", 0),
        ],
    );
    assert_readme_lists_exactly_the_counters(
        &envoy,
        &["https___good_example", "https___failing_example"],
    );
}
