//! A bad plugin configuration makes Envoy refuse to start, and the filter says why in one log
//! line per VM start naming the field: `invalid plugin configuration: <field path>: <message>`.
//! One bad configuration per Envoy start; the tests run in parallel (`--use-dynamic-base-id`).

use host_tests::envoy::Envoy;
use host_tests::yaml_string_literal;

const MARK: &str = "invalid plugin configuration:";

/// A valid JWKS with one EC key (RFC 7517 A.1).
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"1","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;

const WORKLOAD: &str = "workload: {namespace: foo, labels: {app: httpbin}}\n";

/// A policy list with one RequestAuthentication whose `spec` body is `spec` (indented 4).
fn with_spec(kind: &str, spec: &str) -> String {
    format!(
        "{WORKLOAD}policies:\n- apiVersion: security.istio.io/v1\n  kind: {kind}\n  metadata: \
         {{name: httpbin, namespace: foo}}\n  spec:\n{spec}"
    )
}

fn rule_spec(rule_fields: &str) -> String {
    format!(
        "    selector: {{matchLabels: {{app: httpbin}}}}\n    jwtRules:\n    - issuer: \
         \"https://example.com\"\n{rule_fields}"
    )
}

fn jwks_line() -> String {
    format!("      jwks: {}\n", yaml_string_literal(JWKS))
}

/// Starts Envoy with `config` and asserts that it refused to start (exited non-zero) and that
/// its log has exactly one `invalid plugin configuration:` line per VM start, each
/// `<field_path>: <message>` with a message containing every keyword.
fn assert_refused(config: &str, field_path: &str, keywords: &[&str]) {
    let err = match Envoy::start(config, 9) {
        Ok(mut envoy) => {
            envoy.stop();
            panic!(
                "Envoy started with a bad configuration:\n{config}\nlog:\n{}",
                envoy.log()
            );
        }
        Err(e) => e,
    };
    let status = err
        .status
        .unwrap_or_else(|| panic!("Envoy neither became ready nor exited: {err:?}"));
    assert!(
        !status.success(),
        "Envoy exited 0 with a bad configuration: {err:?}"
    );
    let lines: Vec<&str> = err
        .log
        .lines()
        .filter_map(|l| l.split_once(MARK).map(|(_, rest)| rest.trim()))
        .collect();
    // The filter's on_vm_start line: "wasm log mesh-authn mesh-authn: mesh-authn <v> (..) started".
    let vm_starts = err
        .log
        .lines()
        .filter(|l| l.contains("wasm log") && l.trim_end().ends_with(" started"))
        .count();
    let context = format!("config:\n{config}\nEnvoy's log:\n{}", err.log);
    assert!(vm_starts >= 1, "no VM start in the log; {context}");
    assert_eq!(
        lines.len(),
        vm_starts,
        "want one {MARK:?} line per VM start; {context}"
    );
    for line in lines {
        let message = line
            .strip_prefix(field_path)
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or_else(|| panic!("{line:?} does not name {field_path:?}; {context}"));
        for keyword in keywords {
            assert!(
                message.contains(keyword),
                "{line:?} lacks {keyword:?}; {context}"
            );
        }
    }
}

#[test]
fn control_the_helpers_make_a_config_envoy_accepts() {
    let config = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    let mut envoy = Envoy::start(&config, 9).unwrap();
    assert!(envoy.is_running());
    assert!(!envoy.log().contains(MARK), "{}", envoy.log());
}

#[test]
fn unknown_spec_field() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &format!("{}    jwtRulez: []\n", rule_spec(&jwks_line())),
        ),
        "policies[0].spec.jwtRulez",
        &["unknown field", "jwtRules"],
    );
}

#[test]
fn unknown_top_level_field() {
    assert_refused(
        &format!("{WORKLOAD}workloadz: 1\npolicies: []\n"),
        "workloadz",
        &["unknown field", "workload"],
    );
}

#[test]
fn duplicate_key_in_a_peer_authentication() {
    // Last-wins would read this as PERMISSIVE under what looks like STRICT; kubectl refuses it.
    assert_refused(
        &with_spec(
            "PeerAuthentication",
            "    mtls: {mode: STRICT, mode: PERMISSIVE}\n",
        ),
        "policies[0].spec.mtls.mode",
        &["given twice", "kubectl"],
    );
}

#[test]
fn header_name_that_no_request_can_carry() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &rule_spec(&format!(
                "{}      fromHeaders: [{{name: \"x-jwt \"}}]\n",
                jwks_line()
            )),
        ),
        "policies[0].spec.jwtRules[0].fromHeaders[0].name",
        &["not an HTTP header name"],
    );
}

#[test]
fn unsupported_kind() {
    assert_refused(
        &with_spec("AuthorizationPolicy", &rule_spec(&jwks_line())),
        "policies[0].kind",
        &["AuthorizationPolicy", "RequestAuthentication"],
    );
}

#[test]
fn wrong_type_forward_original_token() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &rule_spec(&format!(
                "{}      forwardOriginalToken: \"yes\"\n",
                jwks_line()
            )),
        ),
        "policies[0].spec.jwtRules[0].forwardOriginalToken",
        &["yes", "boolean"],
    );
}

#[test]
fn wrong_type_audiences() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &rule_spec(&format!("{}      audiences: 5\n", jwks_line())),
        ),
        "policies[0].spec.jwtRules[0].audiences",
        &["sequence"],
    );
}

#[test]
fn empty_issuer_without_keys() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            "    jwtRules:\n    - issuer: \"\"\n",
        ),
        "policies[0].spec.jwtRules[0].issuer",
        &["empty", "jwks", "jwksUri"],
    );
}

#[test]
fn malformed_inline_jwks() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &rule_spec("      jwks: '{\"keys\": ['\n"),
        ),
        "policies[0].spec.jwtRules[0].jwks",
        &["invalid JSON"],
    );
}

#[test]
fn inline_jwks_without_a_usable_key() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &rule_spec(
                "      jwks: '{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}'\n",
            ),
        ),
        "policies[0].spec.jwtRules[0].jwks",
        &["valid public key"],
    );
}

#[test]
fn error_in_a_later_policy_names_its_index() {
    let good = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    let config = format!(
        "{good}- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: \
         {{name: second, namespace: foo}}\n  spec:\n    jwtRules:\n    - issuer: \"https://b\"\n      \
         jwks: 'not json'\n"
    );
    assert_refused(
        &config,
        "policies[1].spec.jwtRules[0].jwks",
        &["invalid JSON"],
    );
}

#[test]
fn missing_workload() {
    assert_refused("policies: []\n", "workload", &["required"]);
}

#[test]
fn missing_workload_namespace() {
    assert_refused(
        "workload: {labels: {app: httpbin}}\npolicies: []\n",
        "workload.namespace",
        &["required"],
    );
}

#[test]
fn empty_root_namespace() {
    assert_refused(
        &format!("{WORKLOAD}rootNamespace: \"\"\npolicies: []\n"),
        "rootNamespace",
        &["empty"],
    );
}

#[test]
fn target_refs() {
    assert_refused(
        &with_spec(
            "RequestAuthentication",
            &format!(
                "    targetRefs: [{{kind: Gateway, group: gateway.networking.k8s.io, name: gw}}]\n{}",
                rule_spec(&jwks_line())
            ),
        ),
        "policies[0].spec.targetRefs",
        &["selector"],
    );
}

#[test]
fn not_yaml() {
    let err = Envoy::start(&format!("{WORKLOAD}policies: [\n"), 9)
        .err()
        .unwrap();
    assert!(!err.status.unwrap().success(), "{err:?}");
    let lines: Vec<&str> = err.log.lines().filter(|l| l.contains(MARK)).collect();
    assert_eq!(lines.len(), 1, "{err:?}");
    assert!(lines[0].contains("not valid YAML"), "{err:?}");
}

#[test]
fn envoy_validate_mode_runs_the_filter_config_check() {
    let good = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    let (ok, out) = host_tests::envoy::validate_plugin_config(&good, 9);
    assert!(ok && !out.contains(MARK), "{out}");
    let (ok, out) = host_tests::envoy::validate_plugin_config("policies: []\n", 9);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("{MARK} workload: required")), "{out}");
}
