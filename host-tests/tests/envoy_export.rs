//! What mesh-authn exports for the filters after it and the access log (`filter/src/export.rs`),
//! measured on Envoy 1.40: the access log's `%FILTER_STATE(wasm.<key>:PLAIN)%` and a native
//! Envoy RBAC filter after mesh-authn matching `filter_state`. Tokens are minted here with known
//! claims; a client-sent header or an unverified token must leave nothing behind.

use host_tests::envoy::{render_config, Envoy, Options};
use host_tests::http;
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, RsaIssuer};
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.example";

/// mesh-authn with a RequestAuthentication (a missing token passes) and `exportIdentity`
/// as given (`None`: left out), then an access log of the three keys, then Envoy RBAC allowing
/// only `ISSUER/alice` by the exported request principal.
fn bootstrap(rsa: &RsaIssuer, upstream: u16, export_identity: Option<bool>) -> String {
    let jwks = tokens::jwks_json(&[rsa.jwk()]);
    let export = export_identity.map_or(String::new(), |on| format!("exportIdentity: {on}\n"));
    let plugin = format!(
        "{export}workload: {{namespace: foo, labels: {{app: httpbin}}}}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: {{name: jwt, namespace: foo}}\n  spec:\n    jwtRules:\n    - issuer: {ISSUER}\n      jwks: {}\n",
        host_tests::yaml_string_literal(&jwks)
    );
    let text = render_config(&plugin, upstream);
    let mut config: Value = serde_yaml_ng::from_str(&text).expect("the template is YAML");
    let hcm = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["access_log"] = json!([{
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string":
                "[export] %REQ(X-CASE)% rp=%FILTER_STATE(wasm.mesh_authn.request_principal:PLAIN)% pp=%FILTER_STATE(wasm.mesh_authn.peer_principal:PLAIN)% claims=%FILTER_STATE(wasm.mesh_authn.claims:PLAIN)%\n"}}
        }
    }]);
    let rbac = json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {"alice": {
                "permissions": [{"any": true}],
                "principals": [{"filter_state": {
                    "key": "wasm.mesh_authn.request_principal",
                    "string_match": {"exact": format!("{ISSUER}/alice")}
                }}]
            }}}
        }
    });
    let filters = hcm["http_filters"].as_array_mut().expect("http_filters");
    filters.insert(1, rbac);
    serde_json::to_string(&config).unwrap()
}

#[test]
fn the_verified_principal_and_claims_reach_the_access_log_and_envoy_rbac() {
    let rsa = RsaIssuer::generate("export-1");
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start_config(
        &bootstrap(&rsa, upstream.port, Some(true)),
        &Options::default(),
    )
    .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let mint = |sub: &str| {
        let mut c = claims(ISSUER, None, 600);
        c["sub"] = sub.into();
        c["groups"] = json!(["dev"]);
        (format!("Bearer {}", rsa.mint(c.clone())), c)
    };
    let (alice, alice_claims) = mint("alice");
    let (bob, _) = mint("bob");
    let get = |case: &str, headers: &[(&str, &str)]| {
        let mut h = vec![("x-case", case)];
        h.extend_from_slice(headers);
        http::get(envoy.port(), "/get", &h).status
    };
    assert_eq!(get("alice", &[("authorization", &alice)]), 200);
    assert_eq!(get("bob", &[("authorization", &bob)]), 403);
    assert_eq!(get("none", &[]), 403, "no token: nothing exported");
    // A client cannot set the filter state with a header of the same name.
    assert_eq!(
        get(
            "forged",
            &[
                ("mesh_authn.request_principal", &format!("{ISSUER}/alice")),
                (
                    "wasm.mesh_authn.request_principal",
                    &format!("{ISSUER}/alice")
                ),
            ]
        ),
        403
    );
    // Envoy flushes the access log in the background: wait for the four lines.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let lines = || -> Vec<String> {
        envoy
            .log()
            .lines()
            .filter_map(|l| l.strip_prefix("[export] ").map(str::to_owned))
            .collect()
    };
    while lines().len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let lines = lines();
    let line = |case: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{case} ")))
            .unwrap_or_else(|| panic!("no access log line for {case}:\n{}", envoy.log()))
            .to_owned()
    };
    let a = line("alice");
    assert!(
        a.starts_with(&format!("alice rp={ISSUER}/alice pp=- claims=")),
        "{a}"
    );
    let logged: Value = serde_json::from_str(a.split_once("claims=").unwrap().1).unwrap();
    assert_eq!(logged, alice_claims);
    assert!(line("bob").starts_with(&format!("bob rp={ISSUER}/bob ")));
    assert_eq!(line("none"), "none rp=- pp=- claims=-");
    assert_eq!(line("forged"), "forged rp=- pp=- claims=-");
}

/// Off by default (README: `exportIdentity`): nothing is written, so the RBAC filter after
/// mesh-authn sees no principal even for a verified token.
#[test]
fn nothing_is_exported_unless_the_configuration_asks() {
    let rsa = RsaIssuer::generate("export-2");
    let upstream = EchoUpstream::start();
    let mut c = claims(ISSUER, None, 600);
    c["sub"] = "alice".into();
    let alice = format!("Bearer {}", rsa.mint(c));
    for export_identity in [None, Some(false)] {
        let envoy = Envoy::start_config(
            &bootstrap(&rsa, upstream.port, export_identity),
            &Options::default(),
        )
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
        let status = http::get(
            envoy.port(),
            "/get",
            &[("x-case", "alice"), ("authorization", &alice)],
        )
        .status;
        assert_eq!(status, 403, "exportIdentity {export_identity:?}");
    }
}
