//! The `mesh-authn` command-line tool, run as built (feature `cli`): every example checks
//! clean, `kubectl get -o yaml` output (a `List`) is accepted with its AuthorizationPolicies,
//! `check` lists the AuthorizationPolicies that apply and those that do not (and why), WasmPlugin deployment traps are reported, `--version` is the artifact's
//! identity, and the committed JSON Schema is the one `schema` prints and the examples follow.
//! The Envoy-backed comparisons (`explain` against Envoy, the bad-config table) are in
//! host-tests/tests/cli.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize as _;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-authn"))
        .current_dir(root())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Every `want` is in `stdout`.
fn contains_all(stdout: &str, wants: &[&str]) {
    for want in wants {
        assert!(stdout.contains(want), "{want:?} not in:\n{stdout}");
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every `.yaml` under examples/ that the filter reads (the compose demo's Envoy bootstrap and
/// compose file are not plugin configurations or Istio resources).
fn example_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["examples", "examples/policies", "examples/istio"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(format!(
                    "{dir}/{}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 11, "{files:?}");
    files
}

#[test]
fn every_example_checks_clean() {
    for file in example_files() {
        let out = run(&["check", "--output", "json", &file], None);
        assert!(out.status.success(), "{file}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["valid"], true, "{file}: {report}");
        for input in report["inputs"].as_array().unwrap() {
            assert!(input["error"].is_null(), "{file}: {input}");
        }
    }
    // The policy files together, for the workload they are written for.
    let mut args = vec!["check", "--workload", "foo/app=httpbin"];
    let policies: Vec<String> = example_files()
        .into_iter()
        .filter(|f| f.starts_with("examples/policies/"))
        .collect();
    args.extend(policies.iter().map(String::as_str));
    let out = run(&args, None);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("issuer testing@secure.istio.io"),
        "{stdout}"
    );
    assert!(stdout.contains("PeerAuthentication: STRICT"), "{stdout}");
}

/// What `kubectl get requestauthentications,peerauthentications,authorizationpolicies -A -o
/// yaml` prints: a `List` whose items carry the server's metadata and `status`.
fn kubectl_list() -> String {
    r#"apiVersion: v1
items:
- apiVersion: security.istio.io/v1
  kind: RequestAuthentication
  metadata:
    creationTimestamp: "2026-01-02T03:04:05Z"
    generation: 1
    name: httpbin
    namespace: foo
    resourceVersion: "1234"
    uid: 0a1b2c3d-0000-4000-8000-000000000001
  spec:
    selector:
      matchLabels:
        app: httpbin
    jwtRules:
    - issuer: https://issuer.example.com
      jwksUri: https://issuer.example.com/jwks.json
  status: {}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata:
    creationTimestamp: "2026-01-02T03:04:05Z"
    name: default
    namespace: foo
  spec:
    mtls:
      mode: STRICT
    portLevelMtls: {}
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata:
    creationTimestamp: "2026-01-01T00:00:00Z"
    name: default
    namespace: istio-system
  spec:
    mtls:
      mode: PERMISSIVE
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata:
    name: require-jwt
    namespace: foo
  spec:
    action: ALLOW
    rules:
    - from:
      - source:
          requestPrincipals: ["*"]
kind: List
metadata:
  resourceVersion: ""
"#
    .to_owned()
}

#[test]
fn a_kubectl_list_is_accepted_with_its_authorization_policies() {
    // `portLevelMtls: {}` on a namespace policy is refused by istiod's validation: drop it for
    // the accepted case, keep it for the refused one.
    let list = kubectl_list().replace("    portLevelMtls: {}\n", "");
    let out = run(
        &["check", "-", "--workload", "foo/app=httpbin"],
        Some(&list),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    contains_all(
        &stdout,
        &[
            "issuer https://issuer.example.com",
            "PeerAuthentication: STRICT",
            "namespace foo/default STRICT",
            "mesh istio-system/default PERMISSIVE",
            "ALLOW foo/require-jwt: 1 rule(s)",
        ],
    );
    assert!(!stdout.contains("not evaluated"), "{stdout}");
    // Multi-document YAML reads the same.
    let docs: Vec<String> = serde_yaml_ng::from_str::<Value>(&list).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| serde_yaml_ng::to_string(item).unwrap())
        .collect();
    let out = run(
        &["check", "-", "--workload", "foo/app=httpbin"],
        Some(&docs.join("---\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace foo/default STRICT"));
    // A refusal names the document it came from.
    let out = run(&["check", "-"], Some(&kubectl_list()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: policies[1].spec.portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(policies[1] is - document 1 items[1]: PeerAuthentication foo/default)"),
        "{stdout}"
    );
}

/// Five AuthorizationPolicies around the workload foo/app=httpbin; which apply follows Istio's
/// scoping (istio/api `authorization.proto`: the policy's namespace or the root namespace, and a
/// selector whose labels the workload has), and the dry-run annotation is Istio's
/// `istio.io/dry-run`.
const AUTHZ_AROUND_HTTPBIN: &str = r#"
workload: {namespace: foo, labels: {app: httpbin, version: v1}}
policies:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny-admin, namespace: foo}
  spec:
    selector: {matchLabels: {app: httpbin}}
    action: DENY
    rules:
    - to: [{operation: {paths: [/admin, /admin/*]}}]
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata:
    name: require-jwt
    namespace: foo
    annotations: {istio.io/dry-run: "true"}
  spec:
    rules:
    - from: [{source: {requestPrincipals: ["*"]}}]
    - to: [{operation: {paths: [/healthz]}}]
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: mesh-audit, namespace: istio-system}
  spec:
    action: AUDIT
    rules: [{}]
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: other-ns, namespace: bar}
  spec: {}
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: other-app, namespace: foo}
  spec:
    selector: {matchLabels: {app: reviews}}
    action: DENY
    rules: [{}]
"#;

#[test]
fn check_lists_the_authorization_policies_that_apply_and_those_not_selected() {
    let out = run(&["check", "-"], Some(AUTHZ_AROUND_HTTPBIN));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    contains_all(
        &stdout,
        &[
            "    DENY foo/deny-admin: 1 rule(s)\n",
            "    ALLOW foo/require-jwt: 2 rule(s), dry-run",
            "    AUDIT istio-system/mesh-audit: 1 rule(s)\n",
            "    not selected: bar/other-ns: namespace bar is neither the workload's (foo) nor the root namespace (istio-system)",
            "    not selected: foo/other-app: its selector {app=reviews} does not match the workload's labels",
        ],
    );
    assert!(!stdout.contains("not evaluated"), "{stdout}");

    let out = run(
        &["check", "--output", "json", "-"],
        Some(AUTHZ_AROUND_HTTPBIN),
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let authz = &report["inputs"][0]["applies"]["authorizationPolicy"];
    let applies: Vec<(String, String, bool, u64)> = authz["applies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["policy"].as_str().unwrap().to_owned(),
                p["action"].as_str().unwrap().to_owned(),
                p["dryRun"].as_bool().unwrap(),
                p["rules"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        applies,
        [
            ("foo/deny-admin".to_owned(), "DENY".to_owned(), false, 1),
            ("foo/require-jwt".to_owned(), "ALLOW".to_owned(), true, 2),
            (
                "istio-system/mesh-audit".to_owned(),
                "AUDIT".to_owned(),
                false,
                1
            ),
        ]
    );
    let not_selected: Vec<&str> = authz["notSelected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(not_selected, ["bar/other-ns", "foo/other-app"]);

    // `spec: {}` applies and never matches: a deny-all.
    let deny_all = AUTHZ_AROUND_HTTPBIN.replace("namespace: bar}", "namespace: foo}");
    let out = run(&["check", "-"], Some(&deny_all));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("    ALLOW foo/other-ns: 0 rule(s) (never matches)"),
        "{stdout}"
    );
}

#[test]
fn wasm_plugin_deployment_traps_are_reported() {
    let manifest = std::fs::read_to_string(root().join("examples/istio/sidecar-httpbin.yaml"))
        .unwrap()
        .replace("  match:\n  - mode: SERVER\n", "")
        .replace(
            "  imagePullPolicy: IfNotPresent\n",
            "  imagePullPolicy: IfNotPresent\n  sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
        )
        .replace("failStrategy: FAIL_CLOSE", "failStrategy: FAIL_OPEN");
    let out = run(&["check", "-"], Some(&manifest));
    // Traps are warnings: the configuration itself is valid.
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    contains_all(
        &stdout,
        &[
            "warning: spec.match: a sidecar plugin needs `match: [{mode: SERVER}]`",
            "warning: spec.sha256: `0000000000000000000000000000000000000000000000000000000000000000` is not a real digest",
            "warning: spec.failStrategy: FAIL_OPEN",
            "warning: spec.url: `oci://REGISTRY.example.com/mesh-authn:0.1.0` is the README's placeholder registry",
            // The selector's workload: what applies there.
            "workload foo{app=httpbin}",
        ],
    );
    // The shipped manifest has only the placeholder registry to replace.
    let out = run(&["check", "examples/istio/sidecar-httpbin.yaml"], None);
    let warnings: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("warning:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    // A pluginConfig error names its path in the manifest.
    let broken = std::fs::read_to_string(root().join("examples/istio/sidecar-httpbin.yaml"))
        .unwrap()
        .replace("          mode: STRICT", "          mode: STRIKT");
    let out = run(&["check", "-"], Some(&broken));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "error: spec.pluginConfig.policies[1].spec.mtls.mode: `STRIKT` is not one of"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn version_is_the_artifacts_version_and_git_commit() {
    let out = run(&["--version"], None);
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert_eq!(head.len(), 12, "git rev-parse: {head:?}");
    let want = format!("mesh-authn {} (git {head}", env!("CARGO_PKG_VERSION"));
    assert!(
        line == format!("{want})") || line == format!("{want}-dirty)"),
        "{line:?}, want {want:?})"
    );
}

fn committed_schema() -> Value {
    let text =
        std::fs::read_to_string(root().join("filter/schema/plugin-config.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_committed_schema_is_what_schema_prints() {
    let out = run(&["schema"], None);
    assert!(out.status.success(), "{}", text(&out));
    let committed =
        std::fs::read_to_string(root().join("filter/schema/plugin-config.schema.json")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "filter/schema/plugin-config.schema.json is out of date: run \
         `cargo run -q -p mesh-authn --features cli -- schema > filter/schema/plugin-config.schema.json`"
    );
}

/// Every plugin configuration among the examples: the files, and each WasmPlugin's
/// `pluginConfig`.
fn example_plugin_configs() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for file in example_files() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let doc = Value::deserialize(doc).unwrap();
            if doc.get("kind").is_none() && doc.get("policies").is_some() {
                out.push((file.clone(), doc));
            } else if doc["kind"] == "WasmPlugin" {
                out.push((
                    format!("{file} document {} pluginConfig", i + 1),
                    doc["spec"]["pluginConfig"].clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_example_follows_the_schema_and_unknown_fields_do_not() {
    let validator = jsonschema::validator_for(&committed_schema()).unwrap();
    let examples = example_plugin_configs();
    assert!(examples.len() >= 6, "{}", examples.len());
    for (name, config) in &examples {
        let errors: Vec<String> = validator
            .iter_errors(config)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    let (_, good) = examples[0].clone();
    let mut unknown = good.clone();
    unknown["workloadz"] = json!({"namespace": "foo"});
    assert!(!validator.is_valid(&unknown), "an unknown top-level field");
    for (field, bad) in [
        ("workload", json!({"namespace": "foo", "lables": {}})),
        ("tokenCache", json!({"maxEntries": "many"})),
        ("jwks", json!({"allowSymmetricKeys": "yes"})),
        ("trustDomainAliases", json!("cluster.local")),
    ] {
        let mut config = good.clone();
        config[field] = bad.clone();
        assert!(!validator.is_valid(&config), "{field}: {bad}");
    }
    // Policy items follow Istio's CRD schema: a misspelt spec field is refused.
    let mut config = good;
    config["policies"][0]["spec"]["jwtRulez"] = json!([]);
    assert!(!validator.is_valid(&config), "jwtRulez");
    // AuthorizationPolicy items too (Istio's CRD: `action` one of its enum, no unknown fields).
    let authz: Value = serde_yaml_ng::from_str(AUTHZ_AROUND_HTTPBIN).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&authz)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    for (field, bad) in [("action", json!("DENYY")), ("rulez", json!([]))] {
        let mut config = authz.clone();
        config["policies"][0]["spec"][field] = bad.clone();
        assert!(!validator.is_valid(&config), "{field}: {bad}");
    }
}

/// Envoy's `jwt_authn` test keys and tokens (provenance in filter/tests/fixtures/PROVENANCE.md).
fn envoy_test_common() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(
            root().join("filter/tests/fixtures/envoy_jwt_authn_test_common.json"),
        )
        .unwrap(),
    )
    .unwrap()
}

fn explain(args: &[&str]) -> Value {
    let mut all = vec!["explain", "--output", "json"];
    all.extend_from_slice(args);
    let out = run(&all, None);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// PeerAuthentication as Istio composes it: STRICT from the mesh-wide policy, port 8080
/// DISABLE from the workload's; plaintext is refused (403) only where STRICT applies, and a
/// SPIFFE identity outside the trust domains is refused too.
#[test]
fn explain_peer_authentication_per_port() {
    let at = |port: &str, peer: Option<&str>| {
        let mut args = vec![
            "--config",
            "examples/peer-authentication.yaml",
            "--port",
            port,
        ];
        if let Some(id) = peer {
            args.extend(["--peer-spiffe-id", id]);
        }
        explain(&args)
    };
    let plaintext = at("8443", None);
    assert_eq!(plaintext["peerAuthentication"]["mode"], "STRICT");
    assert_eq!(plaintext["reply"]["status"], 403, "{plaintext}");
    let health = at("8080", None);
    assert_eq!(health["peerAuthentication"]["mode"], "DISABLE");
    assert_eq!(health["verdict"], "allowed", "{health}");
    let mesh_peer = at("8443", Some("spiffe://cluster.local/ns/bar/sa/x"));
    assert_eq!(mesh_peer["verdict"], "allowed", "{mesh_peer}");
    let foreign = at("8443", Some("spiffe://evil.example/ns/bar/sa/x"));
    assert_eq!(foreign["reply"]["status"], 403, "{foreign}");
}

/// A `jwksUri` rule with Envoy's own test token and key set (fixtures/PROVENANCE.md): without a
/// key file the token fails as a failed fetch does in Envoy (401 `Jwks remote fetch is
/// failed`), and the tool says which file is missing; with it, the token verifies and is
/// removed before the request goes upstream.
#[test]
fn explain_reads_remote_key_sets_from_files() {
    let fixture = envoy_test_common();
    let dir = std::env::temp_dir().join(format!("mesh-authn-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, fixture["public_key_jwks"].as_str().unwrap()).unwrap();
    let config = dir.join("remote.yaml");
    std::fs::write(
        &config,
        "workload: {namespace: foo}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: \
         RequestAuthentication\n  metadata: {name: a, namespace: foo}\n  spec:\n    jwtRules:\n    \
         - issuer: https://example.com\n      jwksUri: https://example.com/jwks.json\n",
    )
    .unwrap();
    let token = fixture["tokens"]["GoodToken"].as_str().unwrap();
    let base = [
        "--config",
        config.to_str().unwrap(),
        "--token",
        token,
        "--now",
        "1700000000",
    ];
    let missing = explain(&base);
    assert_eq!(missing["reply"]["status"], 401, "{missing}");
    assert_eq!(missing["reply"]["body"], "Jwks remote fetch is failed");
    assert!(
        missing["keys"][0]
            .as_str()
            .unwrap()
            .contains("no --jwks file given"),
        "{missing}"
    );
    assert_eq!(missing["rules"][0]["tokens"][0]["verified"], false);
    let given = format!("https://example.com/jwks.json={}", jwks.display());
    let verified = explain(&[&base[..], &["--jwks", &given]].concat());
    assert_eq!(verified["verdict"], "allowed", "{verified}");
    assert_eq!(verified["rules"][0]["tokens"][0]["verified"], true);
    assert_eq!(
        verified["rules"][0]["tokens"][0]["claims"]["sub"],
        "test@example.com"
    );
    assert_eq!(
        verified["requestChanges"]["removeHeaders"],
        json!(["authorization"])
    );
}

/// The trace walks the rules as the filter does: a token the first rule verified and does not
/// forward is gone from the request (Envoy `jwt_authn` removes it, `forwardOriginalToken:
/// false`), so the second rule reading the same header finds nothing there.
#[test]
fn explain_trace_does_not_show_a_token_an_earlier_rule_removed() {
    let fixture = envoy_test_common();
    let jwks = fixture["public_key_jwks"].as_str().unwrap();
    let dir = std::env::temp_dir().join(format!("mesh-authn-cli-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("two-rules.yaml");
    let rule = |issuer: &str| {
        format!(
            "    - issuer: {issuer}\n      jwks: {}\n",
            serde_json::to_string(jwks).unwrap()
        )
    };
    std::fs::write(
        &config,
        format!(
            "workload: {{namespace: foo}}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: \
             RequestAuthentication\n  metadata: {{name: a, namespace: foo}}\n  spec:\n    \
             jwtRules:\n{}{}",
            rule("https://example.com"),
            rule("https://z.example.com")
        ),
    )
    .unwrap();
    let token = fixture["tokens"]["GoodToken"].as_str().unwrap();
    let report = explain(&[
        "--config",
        config.to_str().unwrap(),
        "--token",
        token,
        "--now",
        "1700000000",
    ]);
    assert_eq!(report["verdict"], "allowed", "{report}");
    assert_eq!(report["rules"][0]["issuer"], "https://example.com");
    assert_eq!(
        report["rules"][0]["tokens"][0]["verified"], true,
        "{report}"
    );
    assert_eq!(report["rules"][1]["issuer"], "https://z.example.com");
    assert_eq!(report["rules"][1]["tokens"], json!([]), "{report}");
}

/// explain's AuthorizationPolicy step reports what Envoy's RBAC chain as istiod builds it
/// decides (AUDIT, DENY, ALLOW filters, each with its dry-run `shadow_rules`; a denial ends the
/// chain; rule names `ns[<ns>]-policy[<name>]-rule[<i>]`, details
/// `rbac_access_denied_matched_policy[<rule>]`), and `--remote-ip` feeds `remoteIpBlocks`.
#[test]
fn explain_reports_the_authorization_policy_rule_that_decided() {
    let dir = std::env::temp_dir().join(format!("mesh-authn-cli-authz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("authz.yaml");
    std::fs::write(
        &config,
        format!(
            "{AUTHZ_AROUND_HTTPBIN}- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {{name: deny-internal, namespace: foo}}
  spec:
    action: DENY
    rules:
    - from: [{{source: {{remoteIpBlocks: [10.0.0.0/8]}}}}]
"
        ),
    )
    .unwrap();
    let run_path = |path: &str, more: &[&str]| {
        explain(
            &[
                &["--config", config.to_str().unwrap(), "--path", path],
                more,
            ]
            .concat(),
        )
    };
    let rule = |policy: &str, action: &str, i: usize| {
        let (ns, name) = policy.split_once('/').unwrap();
        json!({"policy": policy, "action": action, "rule": format!("ns[{ns}]-policy[{name}]-rule[{i}]")})
    };

    let admin = run_path("/admin/users", &[]);
    assert_eq!(admin["verdict"], "denied by AuthorizationPolicy", "{admin}");
    let authz = &admin["authorizationPolicy"];
    assert_eq!(authz["deniedBy"], rule("foo/deny-admin", "DENY", 0));
    assert_eq!(
        authz["auditedBy"],
        rule("istio-system/mesh-audit", "AUDIT", 0)
    );
    // The DENY filter ended the chain: the dry-run ALLOW policy was not evaluated.
    assert_eq!(authz["dryRun"]["allow"], Value::Null, "{authz}");
    assert_eq!(admin["reply"]["status"], 403);
    assert_eq!(admin["reply"]["body"], "RBAC: access denied");
    assert_eq!(
        admin["reply"]["responseCodeDetails"],
        "rbac_access_denied_matched_policy[ns[foo]-policy[deny-admin]-rule[0]]"
    );
    // remoteIpBlocks reads --remote-ip; without it the tool says the policy reads it.
    assert!(
        authz["notes"].to_string().contains("--remote-ip"),
        "{authz}"
    );

    let health = run_path("/healthz", &[]);
    assert_eq!(health["verdict"], "allowed", "{health}");
    let authz = &health["authorizationPolicy"];
    assert_eq!(authz["deniedBy"], Value::Null);
    assert_eq!(authz["allowedBy"], Value::Null, "no enforced ALLOW policy");
    assert_eq!(
        authz["dryRun"]["allow"],
        rule("foo/require-jwt", "ALLOW", 1)
    );

    let other = run_path("/other", &[]);
    assert_eq!(other["verdict"], "allowed", "{other}");
    assert_eq!(
        other["authorizationPolicy"]["dryRun"]["allow"],
        "no rule matched"
    );

    let internal = run_path("/other", &["--remote-ip", "10.1.2.3"]);
    assert_eq!(
        internal["verdict"], "denied by AuthorizationPolicy",
        "{internal}"
    );
    assert_eq!(
        internal["authorizationPolicy"]["deniedBy"],
        rule("foo/deny-internal", "DENY", 0)
    );
    let outside = run_path("/other", &["--remote-ip", "192.0.2.1"]);
    assert_eq!(outside["verdict"], "allowed", "{outside}");
}
