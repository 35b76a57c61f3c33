//! The `mesh-authn` command-line tool, run as built (`host_tests::cli`): every bad
//! configuration of the bad-config table gives its field-path error and a non-zero exit from
//! `check`; `explain` on the demo's tokens gives the status, body and `WWW-Authenticate` that
//! the real Envoy running the built `.wasm` with the same configuration gives, AuthorizationPolicy
//! included (the demo's DENY on `/admin`, a require-JWT policy, a claim-based `when`).

use host_tests::bad_configs::table;
use host_tests::cli;
use host_tests::envoy::Envoy;
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, RsaIssuer};
use host_tests::{http, DEMO_AUDIENCE};
use serde_json::Value;

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-authn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_refuses_every_bad_configuration_naming_its_field() {
    let rows = table();
    assert!(rows.len() >= 10, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let path = temp_file(&format!("bad-{i}.yaml"), &row.config);
        let out = cli::run(&["check", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let want = format!("  error: {}: ", row.field_path);
        let line = stdout.lines().find(|l| l.starts_with(&want));
        let problem = if out.status.code() != Some(1) {
            Some(format!("exit {:?}", out.status.code()))
        } else if let Some(line) = line {
            row.keywords
                .iter()
                .find(|k| !line.contains(*k))
                .map(|k| format!("{line:?} lacks {k:?}"))
        } else {
            Some(format!("no line starting {want:?}"))
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{}: {problem}\nstdout:\n{stdout}\nstderr:\n{}",
                row.name,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn check_output_json_says_invalid_with_the_error() {
    let row = table().into_iter().next().unwrap();
    let path = temp_file("bad-json.yaml", &row.config);
    let out = cli::run(&["check", "--output", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let error = report["inputs"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("{}: ", row.field_path)),
        "{error}"
    );
}

/// The cargo unit graph (`--unit-graph`, unstable: RUSTC_BOOTSTRAP=1 as `make fuzz` uses it) of
/// `cargo ARGS`, computed without building anything.
fn unit_graph(args: &[&str]) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .current_dir(host_tests::workspace_root())
        .args(args)
        .args(["--unit-graph", "-Z", "unstable-options"])
        .env("RUSTC_BOOTSTRAP", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} --unit-graph: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What decides whether cargo builds the unit again: its package, target, mode, features,
/// profile settings (not the profile's name: `test` inherits `dev`, and cargo shares their
/// artifacts) and platform, and the same of every unit it depends on; hashed.
fn unit_identity(units: &[Value], i: usize, memo: &mut Vec<Option<u64>>) -> u64 {
    use std::hash::{Hash, Hasher};
    if let Some(done) = memo[i] {
        return done;
    }
    let unit = &units[i];
    let mut profile = unit["profile"].clone();
    profile.as_object_mut().unwrap().remove("name");
    let mut deps: Vec<u64> = unit["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| unit_identity(units, d["index"].as_u64().unwrap() as usize, memo))
        .collect();
    deps.sort_unstable();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::json!([
        unit["pkg_id"],
        unit["target"]["name"],
        unit["target"]["kind"],
        unit["mode"],
        unit["features"],
        profile,
        unit["platform"],
    ])
    .to_string()
    .hash(&mut hasher);
    deps.hash(&mut hasher);
    let identity = hasher.finish();
    memo[i] = Some(identity);
    identity
}

/// The identities of the `mesh-authn` binary's units in a unit graph.
fn cli_binary_units(graph: &Value) -> Vec<u64> {
    let units = graph["units"].as_array().unwrap();
    let mut memo = vec![None; units.len()];
    (0..units.len())
        .filter(|&i| {
            let target = &units[i]["target"];
            target["name"] == "mesh-authn"
                && target["kind"] == serde_json::json!(["bin"])
                && units[i]["mode"] == "build"
        })
        .map(|i| unit_identity(units, i, &mut memo))
        .collect()
}

/// The build of the CLI inside the tests (`host_tests::cli::BUILD_ARGS`) is the build `make
/// test`'s cargo command has just made, dependencies included, so it compiles nothing on a
/// clean clone. (`-p mesh-authn --features cli` resolved features otherwise and compiled every
/// dependency again: ~100 s of this file on a clean clone.)
#[test]
fn the_cli_build_is_the_one_make_test_has_made() {
    let make = std::process::Command::new("make")
        .args(["-n", "-s", "-C"])
        .arg(host_tests::workspace_root())
        .args(["unit-and-host-tests", "CARGO=cargo"])
        .output()
        .unwrap();
    assert!(make.status.success(), "{make:?}");
    let recipe = String::from_utf8(make.stdout).unwrap();
    let words: Vec<&str> = recipe.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"cargo"), "{recipe}");
    let make_test = cli_binary_units(&unit_graph(&words[1..]));
    let in_tests = cli_binary_units(&unit_graph(&cli::BUILD_ARGS));
    assert_eq!(
        make_test.len(),
        1,
        "`{recipe}` builds the mesh-authn binary once"
    );
    assert_eq!(in_tests.len(), 1);
    assert!(
        make_test == in_tests,
        "`cargo {}` builds the mesh-authn binary (or a dependency) differently from `{}`",
        cli::BUILD_ARGS.join(" "),
        recipe.trim()
    );
}

/// One request as curl would send it to Envoy, and to `explain`.
struct Case {
    label: &'static str,
    token: Option<String>,
    path: &'static str,
}

fn case(label: &'static str, token: Option<String>, path: &'static str) -> Case {
    Case { label, token, path }
}

/// Require-JWT (Istio's `requestPrincipals: ["*"]`) for `/get`, and a claim-based `when` for
/// `/anything/*`, added to the demo's policies (after its DENY on `/admin`).
const REQUIRE_JWT_AND_CLAIM: &str = "\
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: require-jwt, namespace: foo}
  spec:
    selector: {matchLabels: {app: httpbin}}
    action: ALLOW
    rules:
    - from: [{source: {requestPrincipals: [\"*\"]}}]
      to: [{operation: {paths: [/get]}}]
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: admins-only, namespace: foo}
  spec:
    action: ALLOW
    rules:
    - to: [{operation: {paths: [/anything/*]}}]
      when:
      - key: request.auth.claims[groups]
        values: [admins]
";

const DEMO_ISSUER: &str = "http://127.0.0.1:1";

/// The demo's configuration (host-tests/src/bin/demo.rs) for the demo's key.
fn demo(key: &RsaIssuer) -> String {
    host_tests::demo_plugin_config(
        DEMO_ISSUER,
        "http://127.0.0.1:1/.well-known/jwks.json",
        &tokens::jwks_json(&[key.jwk()]),
    )
}

/// A configuration and the requests `explain` and Envoy must answer alike with it.
struct Comparison {
    name: &'static str,
    config: String,
    cases: Vec<Case>,
}

/// `explain` on the demo's tokens, the demo's configuration with a require-JWT policy and a
/// claim condition, and the request as it goes upstream: each configuration on its own
/// listener of one Envoy (host_tests::envoy::Envoy::start_listeners), which the comparisons
/// share (one Envoy start instead of three), run side by side.
#[test]
fn explain_gives_what_envoy_gives() {
    let key = RsaIssuer::generate("demo-key-1");
    let comparisons = [
        demos_tokens(&key),
        require_jwt_and_a_claim_condition(&key),
        request_after_token_removal_and_outputs(&key),
    ];
    let upstream = EchoUpstream::start();
    let listeners: Vec<(&str, &str)> = comparisons
        .iter()
        .map(|c| (c.name, c.config.as_str()))
        .collect();
    let mut envoy = Envoy::start_listeners(&listeners, upstream.port, &Default::default())
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let ports = &envoy.listener_ports();
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = comparisons
            .iter()
            .map(|c| s.spawn(move || compare(c, ports[c.name])))
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("a comparison panicked"))
            .collect()
    });
    envoy.stop();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn demos_tokens(key: &RsaIssuer) -> Comparison {
    let config = demo(key);
    let issuer = DEMO_ISSUER;
    let valid = key.mint(claims(issuer, Some(DEMO_AUDIENCE), 3600));
    let cases = [
        case("no token", None, "/get"),
        case("valid token", Some(valid.clone()), "/get"),
        case(
            "expired token",
            Some(key.mint(claims(issuer, Some(DEMO_AUDIENCE), -3600))),
            "/get",
        ),
        case(
            "bad signature",
            Some(tokens::corrupt_signature(&valid)),
            "/get",
        ),
        case(
            "wrong audience",
            Some(key.mint(claims(issuer, Some("some-other-service"), 3600))),
            "/get",
        ),
        case(
            "unknown issuer, query string in the path",
            Some(key.mint(claims("https://other", Some(DEMO_AUDIENCE), 3600))),
            "/anything/x?a=1",
        ),
        case("not a JWT", Some("not-a-jwt".to_owned()), "/get"),
        // The demo's AuthorizationPolicy: DENY on /admin and /admin/*, token or not.
        case("DENY /admin/*, no token", None, "/admin/users"),
        case(
            "DENY /admin/*, valid token",
            Some(valid.clone()),
            "/admin/users",
        ),
        case(
            "DENY /admin/*, expired token (RequestAuthentication answers first)",
            Some(key.mint(claims(issuer, Some(DEMO_AUDIENCE), -3600))),
            "/admin/users",
        ),
    ];
    Comparison {
        name: "demos-tokens",
        config,
        cases: cases.into(),
    }
}

fn require_jwt_and_a_claim_condition(key: &RsaIssuer) -> Comparison {
    let config = demo(key) + REQUIRE_JWT_AND_CLAIM;
    let issuer = DEMO_ISSUER;
    let valid = key.mint(claims(issuer, Some(DEMO_AUDIENCE), 3600));
    let mut admin = claims(issuer, Some(DEMO_AUDIENCE), 3600);
    admin["groups"] = serde_json::json!(["users", "admins"]);
    let admin = key.mint(admin);
    let mut user = claims(issuer, Some(DEMO_AUDIENCE), 3600);
    user["groups"] = serde_json::json!(["users"]);
    let user = key.mint(user);
    let cases = [
        case("require JWT, no token", None, "/get"),
        case("require JWT, valid token", Some(valid.clone()), "/get"),
        case(
            "require JWT, expired token",
            Some(key.mint(claims(issuer, Some(DEMO_AUDIENCE), -3600))),
            "/get",
        ),
        case(
            "claim condition, groups has admins",
            Some(admin.clone()),
            "/anything/report?x=1",
        ),
        case(
            "claim condition, groups without admins",
            Some(user),
            "/anything/report",
        ),
        case(
            "claim condition, no groups claim",
            Some(valid),
            "/anything/report",
        ),
        case("claim condition, no token", None, "/anything/report"),
        case(
            "no ALLOW rule for the path",
            Some(admin.clone()),
            "/headers",
        ),
        case("DENY before ALLOW", Some(admin), "/admin/users"),
    ];
    Comparison {
        name: "require-jwt-and-claim",
        config,
        cases: cases.into(),
    }
}

/// AuthorizationPolicy reads the request as it goes upstream: the verified token removed
/// (a DENY on a present `authorization` header does not see it) and the output header added (a
/// DENY on `x-jwt-sub` does).
fn request_after_token_removal_and_outputs(key: &RsaIssuer) -> Comparison {
    let config = demo(key).replacen(
        "      audiences: ",
        "      outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]\n      audiences: ",
        1,
    ) + "\
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny-by-headers, namespace: foo}
  spec:
    action: DENY
    rules:
    - to: [{operation: {paths: [/anything/sub]}}]
      when: [{key: \"request.headers[x-jwt-sub]\", values: [tester@example.com]}]
    - to: [{operation: {paths: [/anything/auth]}}]
      when: [{key: \"request.headers[authorization]\", values: [\"*\"]}]
";
    assert!(config.contains("outputClaimToHeaders"), "{config}");
    let valid = key.mint(claims(DEMO_ISSUER, Some(DEMO_AUDIENCE), 3600));
    let cases = [
        case(
            "output header seen, token",
            Some(valid.clone()),
            "/anything/sub",
        ),
        case("output header seen, no token", None, "/anything/sub"),
        case("removed token not seen", Some(valid), "/anything/auth"),
    ];
    Comparison {
        name: "after-token-removal",
        config,
        cases: cases.into(),
    }
}

/// Sends every case of `comparison` to the Envoy listener at `port`, running the built `.wasm`
/// with its configuration, and to `explain` with the same configuration; a line per case where
/// they differ (status, body, `WWW-Authenticate`, and on an allowed request the headers explain
/// says are removed).
fn compare(comparison: &Comparison, port: u16) -> Vec<String> {
    let config_path = temp_file(
        &format!("config-{}.yaml", comparison.name),
        &comparison.config,
    );
    let authority = format!("127.0.0.1:{port}");
    let mut failures = Vec::new();
    for case in &comparison.cases {
        let bearer = case.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        let got = http::get(port, case.path, &headers);
        let mut args = vec![
            "explain",
            "--output",
            "json",
            "--config",
            config_path.to_str().unwrap(),
            "--authority",
            &authority,
            "--path",
            case.path,
        ];
        if let Some(t) = &case.token {
            args.extend(["--token", t]);
        }
        let out = cli::run(&args);
        assert!(
            out.status.success(),
            "{}: {}",
            case.label,
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (status, body, www) = match report["reply"].as_object() {
            Some(reply) => (
                reply["status"].as_u64().unwrap() as u16,
                reply["body"].as_str().unwrap().to_owned(),
                reply["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|h| h[0] == "www-authenticate")
                    .map(|h| h[1].as_str().unwrap().to_owned()),
            ),
            // Allowed: Envoy forwards to the echo upstream; compare what reached it.
            None => {
                let removed: Vec<&str> = report["requestChanges"]["removeHeaders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                // Only a forwarded request has the echo's JSON (a mismatch is reported below).
                let echoed = if got.status == 200 {
                    got.json()
                } else {
                    Value::Null
                };
                let upstream_saw: Vec<String> = echoed
                    .get("headers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|h| h[0].as_str().unwrap().to_owned())
                    .collect();
                for name in &removed {
                    if upstream_saw.iter().any(|n| n == name) {
                        failures.push(format!(
                            "{}: explain says {name} is removed; the upstream received it",
                            case.label
                        ));
                    }
                }
                if case.token.is_some() && !removed.contains(&"authorization") {
                    failures.push(format!(
                        "{}: explain does not remove the verified token",
                        case.label
                    ));
                }
                // Forwarded: the body is the upstream's, whatever Envoy answered.
                let body = if got.status == 200 {
                    got.body.clone()
                } else {
                    "(forwarded to the upstream)".to_owned()
                };
                (200, body, None)
            }
        };
        let envoy_www = got.header("www-authenticate").map(str::to_owned);
        if (status, body.as_str(), &www) != (got.status, got.body.as_str(), &envoy_www) {
            failures.push(format!(
                "{}: explain says {status} {body:?} {www:?}; Envoy answered {} {:?} {envoy_www:?}",
                case.label, got.status, got.body
            ));
        }
    }
    failures
        .into_iter()
        .map(|f| format!("[{}] {f}", comparison.name))
        .collect()
}
