//! Hot config update through LDS on a file (`envoy/mesh-authn-lds.yaml`, two workers): a new
//! listener whose plugin configuration is invalid is rejected by Envoy, the old configuration
//! keeps serving (a valid token 200, a forged one 401, and a token only the OLD policy accepts
//! still 200), and the filter says why in one log line naming the bad field. A good update then
//! takes effect. Expected statuses and bodies are Envoy `jwt_authn`'s. What the old
//! configuration counted just before an update still reaches `/stats` (the counts sent).

use host_tests::envoy::Options;
use host_tests::http::{self, Response};
use host_tests::lds::LdsEnvoy;
use host_tests::plugin_config::{PluginConfig, Policy, Rule};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, EcIssuer};
use serde_json::{json, Value};

const MARK: &str = "invalid plugin configuration:";

/// One RequestAuthentication with one rule for `issuer`, keys inline; `extra` rule fields.
fn policy(issuer: &str, key: &EcIssuer, extra: &[(&'static str, Value)]) -> String {
    PluginConfig::new()
        .policy(&Policy::new(
            "httpbin",
            vec![Rule {
                issuer: issuer.into(),
                jwks: tokens::jwks_json(&[key.jwk()]),
                extra: extra.to_vec(),
                ..Rule::default()
            }],
        ))
        .render()
}

fn get(envoy: &LdsEnvoy, token: &str) -> Response {
    let bearer = format!("Bearer {token}");
    http::get(envoy.envoy.port(), "/", &[("authorization", &bearer)])
}

fn expect(case: &str, r: &Response, status: u16, body: Option<&str>) {
    assert_eq!(r.status, status, "{case}: {r:?}");
    if let Some(body) = body {
        assert_eq!(r.body, body, "{case}: {r:?}");
    }
}

/// A dozen fresh connections each (both workers): `pass` passes, its forgery and `refused`
/// are refused as `refused_body` says.
fn assert_serving(case: &str, envoy: &LdsEnvoy, pass: &str, refused: &str, refused_body: &str) {
    let forged = tokens::corrupt_signature(pass);
    for _ in 0..12 {
        expect(
            &format!("{case}: valid token"),
            &get(envoy, pass),
            200,
            None,
        );
        expect(
            &format!("{case}: forged token"),
            &get(envoy, &forged),
            401,
            Some("Jwt verification fails"),
        );
        expect(
            &format!("{case}: the other policy's token"),
            &get(envoy, refused),
            401,
            Some(refused_body),
        );
    }
}

#[test]
fn a_bad_plugin_config_update_is_rejected_and_the_old_config_keeps_serving() {
    let upstream = EchoUpstream::start();
    let old_key = EcIssuer::generate("old");
    let new_key = EcIssuer::generate("new");
    let old_issuer = "https://old.example";
    let new_issuer = "https://new.example";
    let old_token = old_key.mint(claims(old_issuer, None, 600));
    let new_token = new_key.mint(claims(new_issuer, None, 600));
    let options = Options {
        concurrency: 2,
        ..Options::default()
    };
    let mut envoy = LdsEnvoy::start(&policy(old_issuer, &old_key, &[]), upstream.port, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let port = envoy.envoy.port();
    // The old policy: its issuer passes, the new issuer is unknown to it.
    assert_serving(
        "before",
        &envoy,
        &old_token,
        &new_token,
        "Jwt issuer is not configured",
    );

    // The new policy with one bad field: rejected.
    let bad = policy(
        new_issuer,
        &new_key,
        &[("forwardOriginalToken", json!("yes"))],
    );
    let log_before = envoy.envoy.log();
    assert!(!envoy.update(&bad), "Envoy took a bad plugin configuration");
    let log = envoy.envoy.log();
    let new_lines: Vec<&str> = log
        .get(log_before.len()..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(MARK))
        .collect();
    assert_eq!(new_lines.len(), 1, "one clear line:\n{log}");
    assert!(
        new_lines[0].contains("policies[0].spec.jwtRules[0].forwardOriginalToken"),
        "the line names the field: {}",
        new_lines[0]
    );
    eprintln!("MEASURE rejected update's line: {}", new_lines[0]);
    // Envoy's own record: the version in force is still the first one. (That no VM failed,
    // here or later, the harness's teardown checks.)
    let stats = envoy.envoy.stats();
    assert!(
        stats.contains("listener_manager.lds.version_text: \"1\""),
        "{stats}"
    );
    assert_eq!(envoy.envoy.port(), port);
    // Still the OLD policy: the old issuer's token passes, the new issuer's is unknown.
    assert_serving(
        "after the bad update",
        &envoy,
        &old_token,
        &new_token,
        "Jwt issuer is not configured",
    );

    // The same policy without the bad field: taken, and the new policy is what serves.
    assert!(
        envoy.update(&policy(new_issuer, &new_key, &[])),
        "Envoy rejected a good update:\n{}",
        envoy.envoy.log()
    );
    assert_serving(
        "after the good update",
        &envoy,
        &new_token,
        &old_token,
        "Jwt issuer is not configured",
    );
    let stats = envoy.envoy.stats();
    assert!(
        stats.contains("listener_manager.lds.version_text: \"3\""),
        "{stats}"
    );
    let log = envoy.envoy.log();
    assert_eq!(log.matches(MARK).count(), 1, "{log}");
    if std::env::var_os("SHOW_ENVOY_LOG").is_some() {
        eprintln!("{log}");
    }
}

/// What the old configuration counted just before an update reaches `/stats`: its tally is
/// flushed when Envoy removes it (`proxy_on_delete`), not only on its tick (README "Counters"). With
/// `--drain-time-s 0` the old listener is removed before its next tick, as a rule: when a tick
/// falls between the requests and the removal, it flushes them instead.
#[test]
fn what_the_old_configuration_counted_just_before_an_update_is_not_lost() {
    let upstream = EchoUpstream::start();
    let (old_key, new_key) = (EcIssuer::generate("old"), EcIssuer::generate("new"));
    let (old_issuer, new_issuer) = ("https://old.example", "https://new.example");
    let options = Options {
        args: ["--drain-time-s", "0", "--drain-strategy", "immediate"]
            .map(str::to_owned)
            .to_vec(),
        ..Options::default()
    };
    let mut envoy = LdsEnvoy::start(&policy(old_issuer, &old_key, &[]), upstream.port, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let old_token = old_key.mint(claims(old_issuer, None, 600));
    for _ in 0..6 {
        expect("the old policy", &get(&envoy, &old_token), 200, None);
    }
    assert!(
        envoy.update(&policy(new_issuer, &new_key, &[])),
        "Envoy rejected a good update:\n{}",
        envoy.envoy.log()
    );
    let want: Vec<(String, u64)> = [("allowed", 6), ("issuer.https___old_example.allowed", 6)]
        .iter()
        .map(|(n, v)| (format!("wasmcustom.mesh_authn.{n}"), *v))
        .collect();
    envoy
        .envoy
        .assert_stats(&want, &["mesh_authn", "listener_manager"]);
}
