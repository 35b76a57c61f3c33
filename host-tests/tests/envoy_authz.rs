//! AuthorizationPolicy through the real Envoy and the real `.wasm`: the wiring after
//! RequestAuthentication and PeerAuthentication, Envoy RBAC's reply, dry-run, the counters,
//! and what `source.address` is on Envoy 1.40. Expected statuses and bodies are Istio's and
//! Envoy RBAC's (`RBAC: access denied`, 403); tokens are minted here. The differential suite
//! against native Envoy RBAC is `envoy_authz_differential` (issue 18's other half).

use std::sync::LazyLock;

use host_tests::certs::TestPki;
use host_tests::envoy::Envoy;
use host_tests::http::{self, Response};
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::servers::EchoUpstream;
use host_tests::tls::{self, Outcome};
use host_tests::tokens::{self, claims, RsaIssuer};

const ISSUER: &str = "https://issuer.example";
const RBAC_BODY: &str = "RBAC: access denied";

static RSA: LazyLock<RsaIssuer> = LazyLock::new(|| RsaIssuer::generate("authz-1"));
static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);

/// The plugin configuration for workload `foo` with these resources (YAML list items).
fn plugin_config(resources: &str) -> String {
    format!("workload: {{namespace: foo, labels: {{app: httpbin}}}}\npolicies:\n{resources}")
}

fn request_authn() -> String {
    let jwks = tokens::jwks_json(&[RSA.jwk()]);
    format!(
        "- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: {{name: jwt, namespace: foo}}\n  spec:\n    jwtRules:\n    - issuer: {ISSUER}\n      jwks: {}\n",
        host_tests::yaml_string_literal(&jwks)
    )
}

fn authz(name: &str, annotations: &str, spec: &str) -> String {
    format!(
        "- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {{name: {name}, namespace: foo{annotations}}}\n  spec: {spec}\n"
    )
}

fn start(config: &str, upstream: &EchoUpstream) -> Envoy {
    Envoy::start(config, upstream.port).unwrap_or_else(|e| panic!("Envoy did not start: {e}"))
}

fn token() -> String {
    let mut c = claims(ISSUER, None, 600);
    c["sub"] = "alice".into();
    format!("Bearer {}", RSA.mint(c))
}

fn status(r: &Response) -> (u16, &str) {
    (r.status, if r.status == 200 { "" } else { r.body.as_str() })
}

/// Istio's "require JWT" pair, a DENY on a path, a dry-run DENY that denies nothing, an AUDIT
/// policy, and the counters in `/stats`.
#[test]
fn require_jwt_deny_path_dry_run_and_counters() {
    let upstream = EchoUpstream::start();
    let config = plugin_config(&format!(
        "{}{}{}{}{}",
        request_authn(),
        authz(
            "require-jwt",
            "",
            "{rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]}"
        ),
        authz(
            "deny-admin",
            "",
            "{action: DENY, rules: [{to: [{operation: {paths: [\"/admin*\"]}}]}]}"
        ),
        authz(
            "dry-deny",
            ", annotations: {istio.io/dry-run: \"true\"}",
            "{action: DENY, rules: [{to: [{operation: {paths: [/dry]}}]}]}"
        ),
        authz(
            "audit",
            "",
            "{action: AUDIT, rules: [{to: [{operation: {methods: [GET]}}]}]}"
        ),
    ));
    let envoy = start(&config, &upstream);
    let bearer = token();
    let auth = [("authorization", bearer.as_str())];
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], (u16, &'a str));
    let cases: &[Case] = &[
        ("/get", &[], (403, RBAC_BODY)),
        ("/get", &auth, (200, "")),
        ("/admin/users", &auth, (403, RBAC_BODY)),
        ("/admin?x=1", &auth, (403, RBAC_BODY)),
        ("/dry", &auth, (200, "")),
        ("/dry", &[], (403, RBAC_BODY)),
    ];
    let mut failures = Vec::new();
    for (path, headers, want) in cases {
        let r = http::get(envoy.port(), path, headers);
        if status(&r) != *want {
            failures.push(format!(
                "{path} {headers:?}: got {:?}, want {want:?}",
                status(&r)
            ));
        }
    }
    // Envoy's local-reply machinery gives RBAC's body its content type; the filter's reply goes
    // through the same path.
    let denied = http::get(envoy.port(), "/get", &[]);
    if denied.header("content-type") != Some("text/plain") {
        failures.push(format!("content-type: {:?}", denied.header("content-type")));
    }
    // A token that fails is JWT's 401 before authorization runs.
    let bad = http::get(envoy.port(), "/get", &[("authorization", "Bearer x.y.z")]);
    if bad.status != 401 {
        failures.push(format!("bad token: got {}", bad.status));
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", envoy.log());
    let want: Vec<(String, u64)> = [
        ("denied.rbac_access_denied", 5),
        ("authz.no_allow_match", 3),
        ("authz.policy.foo.require-jwt.allowed", 2),
        ("authz.policy.foo.deny-admin.denied", 2),
        ("authz.policy.foo.dry-deny.dry_run_denied", 2),
        ("authz.policy.foo.audit.audited", 7),
        ("denied.jwt_header_parse_error_bad_base64", 1),
        ("denied", 6),
        ("allowed", 2),
    ]
    .iter()
    .map(|(n, v)| (format!("wasmcustom.mesh_authn.{n}"), *v))
    .collect();
    envoy.assert_stats(&want, &["wasmcustom.mesh_authn"]);
}

/// `principals` from the client certificate the listener validated; plaintext has none.
#[test]
fn principals_over_mtls() {
    let upstream = EchoUpstream::start();
    let envoy = MtlsEnvoy::start(&PKI, upstream.port, |_, _| {
        plugin_config(&authz(
            "only-bar",
            "",
            "{rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/bar]}}]}]}",
        ))
    })
    .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let ca = &PKI.ca.cert_der;
    let got = |client| match tls::get(envoy.port_a, "/get", &[], ca, client) {
        Outcome::Response(r) => (r.status, r.body),
        Outcome::Refused(e) => (0, e),
    };
    assert_eq!(got(Some(&PKI.client_good)).0, 200);
    assert_eq!(
        got(Some(&PKI.client_other_trust_domain)),
        (403, RBAC_BODY.to_owned())
    );
    assert_eq!(
        got(Some(&PKI.client_no_uri_san)),
        (403, RBAC_BODY.to_owned())
    );
    assert_eq!(got(None), (403, RBAC_BODY.to_owned()));
    let plain = http::get(envoy.port_a, "/get", &[]);
    assert_eq!((plain.status, plain.body.as_str()), (403, RBAC_BODY));
}

/// Measured on Envoy 1.40 with the shipped bootstrap (`use_remote_address` unset, no trusted
/// hops): Wasm's `source.address` is the connection manager's remote address, taken from the
/// last `x-forwarded-for` entry when there is one — Envoy RBAC's `remote_ip`, not the physical
/// peer (`direct_remote_ip`).
#[test]
fn source_address_is_the_xff_derived_remote_address() {
    let upstream = EchoUpstream::start();
    let config = plugin_config(&authz(
        "remote",
        "",
        "{rules: [{from: [{source: {remoteIpBlocks: [10.9.9.9]}}]}]}",
    ));
    let envoy = start(&config, &upstream);
    let xff = http::get(envoy.port(), "/get", &[("x-forwarded-for", "10.9.9.9")]);
    assert_eq!(xff.status, 200, "{}", envoy.log());
    let direct = http::get(envoy.port(), "/get", &[]);
    assert_eq!((direct.status, direct.body.as_str()), (403, RBAC_BODY));
}
