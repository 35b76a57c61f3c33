//! Without `workload` in the plugin configuration (or for each of its fields it leaves out), the
//! filter takes the workload from Envoy's node metadata (`NAMESPACE`, `LABELS`), as Istio's
//! sidecars and gateways carry it; the node
//! is set in the bootstrap, as istio-agent sets it. Without a namespace there, Envoy refuses
//! the plugin.

use host_tests::envoy::{listeners_bootstrap, render_config, Envoy, Options};
use host_tests::http;
use host_tests::plugin_config::{PluginConfig, Policy, Rule};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, RsaIssuer};

const ISSUER: &str = "https://example.com";

/// A plugin config without `workload`: one policy in `foo` selecting `app=<app>`.
fn config_for(app: &'static str, jwks: &str) -> PluginConfig {
    PluginConfig::new().without_workload().policy(&Policy {
        name: "p",
        namespace: "foo",
        selector: Some(vec![("app", app)]),
        rules: vec![Rule {
            issuer: ISSUER.into(),
            jwks: jwks.to_owned(),
            ..Rule::default()
        }],
    })
}

fn with_node(node_yaml: &str, plugin: &str, upstream: u16) -> String {
    format!("{node_yaml}{}", render_config(plugin, upstream))
}

const ISTIO_NODE: &str = "node:\n  id: sidecar~10.0.0.1~httpbin-1.foo~foo.svc.cluster.local\n  \
     metadata:\n    NAMESPACE: foo\n    LABELS: {app: httpbin, version: v1}\n    CLUSTER_ID: Kubernetes\n";

/// One named row: the plugin configuration (with [`ISTIO_NODE`] in the bootstrap), the status
/// and body an expired token gets, and the workload line the log must show.
struct Row {
    name: &'static str,
    plugin: PluginConfig,
    status: u16,
    body: Option<&'static str>,
    workload_line: Option<&'static str>,
}

#[test]
fn workload_comes_from_node_metadata() {
    let issuer = RsaIssuer::generate("k");
    let jwks = tokens::jwks_json(&[issuer.jwk()]);
    let expired = format!("Bearer {}", issuer.mint(claims(ISSUER, None, -3600)));
    let upstream = EchoUpstream::start();
    let rows = [
        Row {
            name: "the policy selects app=httpbin, which the node's LABELS carry: enforced",
            plugin: config_for("httpbin", &jwks),
            status: 401,
            body: Some("Jwt is expired"),
            workload_line: Some("workload foo{app=httpbin,version=v1}"),
        },
        Row {
            name: "a selector the node's labels do not satisfy: not enforced",
            plugin: config_for("other", &jwks),
            status: 200,
            body: None,
            workload_line: None,
        },
        Row {
            name: "`workload: {namespace: foo}` without labels: the labels still come from the \
                   node, so the app=httpbin policy is still enforced",
            plugin: config_for("httpbin", &jwks).workload("foo", &[]),
            status: 401,
            body: Some("Jwt is expired"),
            workload_line: Some("workload foo{app=httpbin,version=v1}"),
        },
        Row {
            name: "each field `workload` in the plugin config gives wins over the node",
            plugin: config_for("other", &jwks).workload("foo", &[("app", "other")]),
            status: 401,
            body: None,
            workload_line: None,
        },
    ];
    // One Envoy, a listener per row (host_tests::envoy::listeners_bootstrap), each with its
    // own VM, whose log lines name it (`wasm log mesh-authn mesh-authn-row-N: ...`).
    let names: Vec<String> = (0..rows.len()).map(|i| format!("row-{i}")).collect();
    let bootstraps: Vec<(&str, String)> = names
        .iter()
        .zip(&rows)
        .map(|(name, row)| {
            let config = with_node(ISTIO_NODE, &row.plugin.render(), upstream.port);
            (name.as_str(), config)
        })
        .collect();
    let envoy = Envoy::start_config(&listeners_bootstrap(&bootstraps), &Options::default())
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let ports = envoy.listener_ports();
    let mut failures = Vec::new();
    for (name, row) in names.iter().zip(&rows) {
        let r = http::get(ports[name], "/", &[("Authorization", &expired)]);
        if r.status != row.status || row.body.is_some_and(|b| b != r.body) {
            failures.push(format!(
                "{}: want {} {:?}, got {r:?}",
                row.name, row.status, row.body
            ));
        }
        if let Some(line) = row.workload_line {
            let vm = format!(" mesh-authn-{name}: ");
            let log = envoy.log();
            if !log.lines().any(|l| l.contains(&vm) && l.contains(line)) {
                failures.push(format!(
                    "{}: no {line:?} from{vm}in the log:\n{log}",
                    row.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_workload_and_no_namespace_in_the_node_is_refused() {
    let nodes = [
        "",
        "node:\n  id: node-1\n  metadata:\n    LABELS: {app: httpbin}\n",
        "node:\n  id: node-1\n  metadata:\n    NAMESPACE: 7\n",
    ];
    // The three Envoys side by side: each spends its start-up compiling the .wasm.
    std::thread::scope(|s| {
        let starts: Vec<_> = nodes
            .iter()
            .map(|node| {
                s.spawn(move || {
                    let config =
                        with_node(node, &config_for("httpbin", r#"{"keys":[]}"#).render(), 9);
                    let err = Envoy::start_config(&config, &Options::default())
                        .err()
                        .unwrap_or_else(|| panic!("Envoy started with node {node:?}"));
                    assert!(!err.status.unwrap().success(), "{err:?}");
                    assert!(
                        err.log.contains("invalid plugin configuration: workload: "),
                        "{err:?}"
                    );
                })
            })
            .collect();
        for start in starts {
            start.join().expect("a refused start was not as expected");
        }
    });
}
