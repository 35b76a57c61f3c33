//! The shipped Envoy configurations normalise the request path the way istiod's sidecar inbound
//! HTTP connection manager does, so that an AuthorizationPolicy sees the path the upstream
//! will serve. istio/istio (commit in `host-tests/fixtures/istio-authz/PROVENANCE.md`):
//! `pilot/pkg/networking/core/listener_inbound.go#buildSidecarInboundHTTPOpts` sets
//! `useRemoteAddress: false`; `listener_builder.go#buildHTTPConnectionManager` sets
//! `path_with_escaped_slashes_action: KEEP_UNCHANGED` and, for the default
//! `meshConfig.pathNormalization` (`DEFAULT`), `normalize_path: true` without `merge_slashes`
//! (only `MERGE_SLASHES` / `DECODE_AND_MERGE_SLASHES` merge; the `ConnectionSettings` EDGE
//! defaults apply to gateways only, `connection_settings.go#applyEdgeProfileDefaults`).
//!
//! The files are read as shipped (`envoy/*.yaml`, `examples/docker-compose/envoy.yaml`, the
//! README's block), and the two templates tests run are started from their own text: what the
//! upstream receives is Envoy's behaviour under those options, measured, and a DENY on
//! `/admin` refuses the spellings Envoy normalises to `/admin`.

use host_tests::certs::TestPki;
use host_tests::envoy::Envoy;
use host_tests::http;
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::plugin_config::PluginConfig;
use host_tests::servers::EchoUpstream;
use host_tests::{readme, workspace_root};
use serde_json::{json, Value};

/// The four options, as istiod sets them on a sidecar's inbound listener.
fn istio_inbound_options() -> Value {
    json!({
        "normalize_path": true,
        "merge_slashes": false,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "use_remote_address": false,
    })
}

/// `(sent, what the upstream receives)`, measured on Envoy 1.40 with those options.
const PATHS: &[(&str, &str)] = &[
    ("/public/../admin", "/admin"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/public/%2E%2E/admin", "/admin"),
    ("/public/%2e%2E/admin?q=/../x", "/admin?q=/../x"),
    ("/public/./admin", "/public/admin"),
    ("/../admin", "/admin"),
    ("/a/b/../../admin", "/admin"),
    // merge_slashes is false in Istio's default: the doubled slash reaches the filter.
    ("//admin", "//admin"),
    ("/public//../admin", "/public/admin"),
    // KEEP_UNCHANGED: an escaped slash is no separator, so `..%2F` is no dot segment.
    ("/public/..%2Fadmin", "/public/..%2Fadmin"),
    ("/public/%2e%2e%2fadmin", "/public/..%2fadmin"),
    ("/admin", "/admin"),
];

/// A YAML file with `{{KEY}}` placeholders as a JSON value (each placeholder a plain string).
fn yaml_file(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let text = text.replace("{{", "PLACEHOLDER_").replace("}}", "");
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `HttpConnectionManager` config in `v`.
fn connection_managers(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            let is_hcm = map
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(".HttpConnectionManager"));
            if is_hcm {
                out.push(v.clone());
            }
            map.values().for_each(|c| connection_managers(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| connection_managers(c, out)),
        _ => {}
    }
}

fn assert_istio_options(what: &str, hcm: &Value) {
    let want = istio_inbound_options();
    for (key, value) in want.as_object().unwrap() {
        assert_eq!(
            hcm.get(key),
            Some(value),
            "{what}: the HTTP connection manager must set `{key}: {value}` as Istio's inbound \
             listener does"
        );
    }
}

#[test]
fn every_shipped_listener_sets_istios_inbound_path_options() {
    let mut files: Vec<_> = std::fs::read_dir(workspace_root().join("envoy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files.push(workspace_root().join("examples/docker-compose/envoy.yaml"));
    let mut checked = 0;
    for file in &files {
        let mut hcms = Vec::new();
        connection_managers(&yaml_file(file), &mut hcms);
        for hcm in &hcms {
            assert_istio_options(&file.display().to_string(), hcm);
            checked += 1;
        }
    }
    // The LDS template's listener comes from the rendered envoy/mesh-authn.yaml.
    let lds = host_tests::lds::listeners_response("policies: []\n", 9, 1);
    let mut hcms = Vec::new();
    connection_managers(&serde_json::from_str(&lds).unwrap(), &mut hcms);
    assert!(!hcms.is_empty(), "the LDS listener has no HCM: {lds}");
    for hcm in &hcms {
        assert_istio_options("the LDS listener", hcm);
    }
    // mesh-authn.yaml, mesh-authn-mtls.yaml (one HCM shared by both chains through an anchor,
    // read twice), mesh-authn-remote-jwks.yaml, the compose demo's.
    assert!(checked >= 4, "only {checked} connection managers found");
}

#[test]
fn the_readme_lists_the_same_options() {
    let blocks: Vec<_> = readme::blocks("README.md")
        .into_iter()
        .filter(|b| b.kind() == "envoy-hcm-options")
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "one README block of Envoy listener options"
    );
    let v: Value = serde_yaml_ng::from_str(&blocks[0].text).unwrap();
    assert_eq!(v, istio_inbound_options(), "{}", blocks[0].at());
}

fn upstream_path(port: u16, sent: &str) -> (u16, String) {
    let r = http::get(port, sent, &[]);
    if r.status == 200 {
        (r.status, r.json()["path"].as_str().unwrap().to_owned())
    } else {
        (r.status, r.body)
    }
}

fn check_paths(what: &str, port: u16) {
    let wrong: Vec<String> = PATHS
        .iter()
        .filter_map(|(sent, want)| {
            let got = upstream_path(port, sent);
            (got != (200, (*want).to_owned())).then(|| format!("{sent}: want {want}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

#[test]
fn paths_reach_the_upstream_normalised_through_the_shipped_templates() {
    let up = EchoUpstream::start();
    let plain = Envoy::start(&PluginConfig::new().render(), up.port).unwrap();
    check_paths("envoy/mesh-authn.yaml", plain.port());
    let pki = TestPki::generate();
    let mtls = MtlsEnvoy::start(&pki, up.port, |_, _| PluginConfig::new().render()).unwrap();
    check_paths("envoy/mesh-authn-mtls.yaml (plaintext)", mtls.port_a);
}

/// A DENY on `/admin` (and below it), with Istio's Envoy RBAC local reply.
fn deny_admin() -> String {
    PluginConfig::new()
        .raw_policy(json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "deny-admin", "namespace": "foo"},
            "spec": {
                "action": "DENY",
                "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}],
            },
        }))
        .render()
}

#[test]
fn a_deny_on_admin_refuses_every_spelling_envoy_normalises_to_it() {
    let up = EchoUpstream::start();
    let envoy = Envoy::start(&deny_admin(), up.port).unwrap();
    for (sent, normalised) in PATHS {
        let r = http::get(envoy.port(), sent, &[]);
        let path = normalised.split('?').next().unwrap();
        if path == "/admin" {
            assert_eq!(
                (r.status, r.body.as_str()),
                (403, "RBAC: access denied"),
                "{sent}"
            );
        } else {
            // `//admin` is not `/admin` to Istio either (merge_slashes is off by default).
            assert_eq!(r.status, 200, "{sent}: {}", r.body);
            assert_eq!(r.json()["path"], *normalised, "{sent}");
        }
    }
    let r = http::get(envoy.port(), "/admin/users/../keys", &[]);
    assert_eq!((r.status, r.body.as_str()), (403, "RBAC: access denied"));
    assert_eq!(up.request_count(), PATHS.len() - 7);
}
