//! The bad plugin configurations the filter refuses, each with the field path its refusal names
//! and words its message must hold: one table for the filter's log line
//! (`host-tests/tests/bad_config.rs`) and for `mesh-authn check` (`host-tests/tests/cli.rs`).

use crate::yaml_string_literal;

/// A valid JWKS with one EC key (RFC 7517 A.1).
pub const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"1","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;

/// The workload every row's configuration names.
pub const WORKLOAD: &str = "workload: {namespace: foo, labels: {app: httpbin}}\n";

/// A policy list with one resource of `kind` whose `spec` body is `spec` (indented 4).
pub fn with_spec(kind: &str, spec: &str) -> String {
    format!(
        "{WORKLOAD}policies:\n- apiVersion: security.istio.io/v1\n  kind: {kind}\n  metadata: \
         {{name: httpbin, namespace: foo}}\n  spec:\n{spec}"
    )
}

/// A RequestAuthentication spec (indented 4) with one rule for `https://example.com` and
/// `rule_fields` (indented 6).
pub fn rule_spec(rule_fields: &str) -> String {
    format!(
        "    selector: {{matchLabels: {{app: httpbin}}}}\n    jwtRules:\n    - issuer: \
         \"https://example.com\"\n{rule_fields}"
    )
}

/// `jwks:` with [`JWKS`], as a rule field.
pub fn jwks_line() -> String {
    format!("      jwks: {}\n", yaml_string_literal(JWKS))
}

/// One bad configuration: the field path its refusal names and words its message must hold.
pub struct Refused {
    /// What is wrong.
    pub name: &'static str,
    /// The plugin configuration.
    pub config: String,
    /// The field path its refusal names.
    pub field_path: &'static str,
    /// Words the message must hold.
    pub keywords: &'static [&'static str],
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
pub fn table() -> Vec<Refused> {
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
