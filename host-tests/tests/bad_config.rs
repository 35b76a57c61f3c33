//! A bad plugin configuration makes Envoy refuse to start, and the filter says why in one log
//! line per VM start naming the field: `invalid plugin configuration: <field path>: <message>`.
//!
//! Every bad configuration of the table goes through the filter's own parser (the text the
//! log line carries after the mark, checked natively: fast); Envoy then starts once per way a
//! refusal reaches it (a field the filter refuses, text that is not YAML, `envoy --mode
//! validate`), which is what only Envoy can show: the line per VM start and the refused start.

use host_tests::envoy::Envoy;
use host_tests::yaml_string_literal;
use mesh_authn::config::FilterConfig;

const MARK: &str = "invalid plugin configuration:";

/// A valid JWKS with one EC key (RFC 7517 A.1).
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"1","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;

const WORKLOAD: &str = "workload: {namespace: foo, labels: {app: httpbin}}\n";

/// A policy list with one resource of `kind` whose `spec` body is `spec` (indented 4).
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

/// One bad configuration: the field path its refusal names and words its message must hold.
struct Refused {
    name: &'static str,
    config: String,
    field_path: &'static str,
    keywords: &'static [&'static str],
}

fn refused(
    name: &'static str,
    config: String,
    field_path: &'static str,
    keywords: &'static [&'static str],
) -> Refused {
    Refused {
        name,
        config,
        field_path,
        keywords,
    }
}

/// Written as YAML by hand on purpose: duplicate keys, wrong types and broken text are what a
/// typed builder cannot write.
fn table() -> Vec<Refused> {
    let good = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    vec![
        refused(
            "unknown spec field",
            with_spec(
                "RequestAuthentication",
                &format!("{}    jwtRulez: []\n", rule_spec(&jwks_line())),
            ),
            "policies[0].spec.jwtRulez",
            &["unknown field", "jwtRules"],
        ),
        refused(
            "unknown top-level field",
            format!("{WORKLOAD}workloadz: 1\npolicies: []\n"),
            "workloadz",
            &["unknown field", "workload"],
        ),
        // Last-wins would read this as PERMISSIVE under what looks like STRICT; kubectl
        // refuses it.
        refused(
            "duplicate key in a PeerAuthentication",
            with_spec(
                "PeerAuthentication",
                "    mtls: {mode: STRICT, mode: PERMISSIVE}\n",
            ),
            "policies[0].spec.mtls.mode",
            &["given twice", "kubectl"],
        ),
        refused(
            "header name that no request can carry",
            with_spec(
                "RequestAuthentication",
                &rule_spec(&format!(
                    "{}      fromHeaders: [{{name: \"x-jwt \"}}]\n",
                    jwks_line()
                )),
            ),
            "policies[0].spec.jwtRules[0].fromHeaders[0].name",
            &["not an HTTP header name"],
        ),
        refused(
            "unsupported kind",
            with_spec("Sidecar", &rule_spec(&jwks_line())),
            "policies[0].kind",
            &["Sidecar", "AuthorizationPolicy", "RequestAuthentication"],
        ),
        refused(
            "AuthorizationPolicy with CUSTOM",
            with_spec(
                "AuthorizationPolicy",
                "    action: CUSTOM\n    rules: [{}]\n",
            ),
            "policies[0].spec.action",
            &["CUSTOM", "ext_authz"],
        ),
        refused(
            "wrong type: forwardOriginalToken",
            with_spec(
                "RequestAuthentication",
                &rule_spec(&format!(
                    "{}      forwardOriginalToken: \"yes\"\n",
                    jwks_line()
                )),
            ),
            "policies[0].spec.jwtRules[0].forwardOriginalToken",
            &["yes", "boolean"],
        ),
        refused(
            "wrong type: audiences",
            with_spec(
                "RequestAuthentication",
                &rule_spec(&format!("{}      audiences: 5\n", jwks_line())),
            ),
            "policies[0].spec.jwtRules[0].audiences",
            &["sequence"],
        ),
        refused(
            "empty issuer without keys",
            with_spec(
                "RequestAuthentication",
                "    jwtRules:\n    - issuer: \"\"\n",
            ),
            "policies[0].spec.jwtRules[0].issuer",
            &["empty", "jwks", "jwksUri"],
        ),
        refused(
            "malformed inline jwks",
            with_spec(
                "RequestAuthentication",
                &rule_spec("      jwks: '{\"keys\": ['\n"),
            ),
            "policies[0].spec.jwtRules[0].jwks",
            &["invalid JSON"],
        ),
        refused(
            "inline jwks without a usable key",
            with_spec(
                "RequestAuthentication",
                &rule_spec(
                    "      jwks: '{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}'\n",
                ),
            ),
            "policies[0].spec.jwtRules[0].jwks",
            &["valid public key"],
        ),
        refused(
            "error in a later policy names its index",
            format!(
                "{good}- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  \
                 metadata: {{name: second, namespace: foo}}\n  spec:\n    jwtRules:\n    - \
                 issuer: \"https://b\"\n      jwks: 'not json'\n"
            ),
            "policies[1].spec.jwtRules[0].jwks",
            &["invalid JSON"],
        ),
        refused(
            "missing workload",
            "policies: []\n".to_owned(),
            "workload",
            &["required"],
        ),
        refused(
            "missing workload namespace",
            "workload: {labels: {app: httpbin}}\npolicies: []\n".to_owned(),
            "workload.namespace",
            &["required"],
        ),
        refused(
            "empty root namespace",
            format!("{WORKLOAD}rootNamespace: \"\"\npolicies: []\n"),
            "rootNamespace",
            &["empty"],
        ),
        refused(
            "targetRefs",
            with_spec(
                "RequestAuthentication",
                &format!(
                    "    targetRefs: [{{kind: Gateway, group: gateway.networking.k8s.io, name: \
                     gw}}]\n{}",
                    rule_spec(&jwks_line())
                ),
            ),
            "policies[0].spec.targetRefs",
            &["selector"],
        ),
    ]
}

/// What the filter's parser says of `config`: the text the log line carries after [`MARK`].
fn refusal(config: &str) -> Result<String, String> {
    match FilterConfig::parse(config.as_bytes()) {
        Ok(_) => Err(format!("accepted:\n{config}")),
        Err(e) => Ok(e.to_string()),
    }
}

/// `<field_path>: <message>` on one line, with a message containing every keyword.
fn check_message(line: &str, field_path: &str, keywords: &[&str]) -> Result<(), String> {
    let message = line
        .strip_prefix(field_path)
        .and_then(|rest| rest.strip_prefix(": "))
        .ok_or_else(|| format!("{line:?} does not name {field_path:?}"))?;
    if line.contains('\n') {
        return Err(format!("{line:?} is more than one line"));
    }
    match keywords.iter().find(|k| !message.contains(*k)) {
        Some(k) => Err(format!("{line:?} lacks {k:?}")),
        None => Ok(()),
    }
}

#[test]
fn every_bad_configuration_is_refused_naming_its_field() {
    let failures: Vec<String> = table()
        .iter()
        .filter_map(|row| {
            refusal(&row.config)
                .and_then(|line| check_message(&line, row.field_path, row.keywords))
                .err()
                .map(|why| format!("{}: {why}\nconfig:\n{}", row.name, row.config))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Starts Envoy with `config` and asserts that it refused to start (exited non-zero) and that
/// its log has exactly one [`MARK`] line per VM start, each naming `field_path`, with a message
/// containing every keyword.
fn assert_refused_by_envoy(config: &str, field_path: &str, keywords: &[&str]) {
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
        if let Err(why) = check_message(line, field_path, keywords) {
            panic!("{why}; {context}");
        }
    }
}

#[test]
fn control_the_helpers_make_a_config_envoy_accepts() {
    let config = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    if let Ok(line) = refusal(&config) {
        panic!("the filter's parser refused the control: {line}");
    }
    let mut envoy = Envoy::start(&config, 9).unwrap();
    assert!(envoy.is_running());
    assert!(!envoy.log().contains(MARK), "{}", envoy.log());
}

/// The channel every row of the table takes in Envoy: the filter refuses the configuration
/// when the VM starts, and Envoy does not start. One row stands for them all.
#[test]
fn envoy_refuses_to_start_with_a_field_the_filter_refuses() {
    let table = table();
    let row = table
        .iter()
        .find(|r| r.name == "wrong type: forwardOriginalToken")
        .unwrap();
    assert_refused_by_envoy(&row.config, row.field_path, row.keywords);
}

#[test]
fn not_yaml() {
    let config = format!("{WORKLOAD}policies: [\n");
    assert!(refusal(&config).unwrap().contains("not valid YAML"));
    let err = Envoy::start(&config, 9).err().unwrap();
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
