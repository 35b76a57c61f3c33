//! The shipped example configurations go through the filter's real parser, so an example the
//! filter would refuse fails the build.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mesh_authn::config::FilterConfig;

#[test]
fn plugin_config_example_is_accepted_and_scoped() {
    let text = include_str!("../../examples/plugin-config.yaml");
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    let issuers: Vec<_> = config
        .request_authn
        .providers()
        .iter()
        .map(|p| p.issuer.as_str())
        .collect();
    assert_eq!(issuers, ["https://example.com"]);
    assert!(
        config.summary.contains("not selected: [bar/someone-else]"),
        "{}",
        config.summary
    );
}

#[test]
fn peer_authentication_example_is_accepted_and_composed() {
    use mesh_authn::peer_authn::MtlsMode;
    let text = include_str!("../../examples/peer-authentication.yaml");
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    assert_eq!(config.peer_authn.mode(), MtlsMode::Strict);
    assert_eq!(
        config.peer_authn.per_port().get(&8080),
        Some(&MtlsMode::Disable)
    );
    assert!(config.peer_authn.checks_trust_domain());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn remote_jwks_example_is_accepted() {
    use mesh_authn::remote_jwks::SourceKind;
    let text = include_str!("../../examples/remote-jwks.yaml");
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    let remote = &config.remote_jwks;
    assert_eq!(remote.sources.len(), 2);
    assert_eq!(
        remote.settings.cluster_for(remote.sources[0].first_uri()),
        "idp"
    );
    match &remote.sources[1].kind {
        SourceKind::Discovery(uri) => {
            assert_eq!(
                uri.text,
                "https://login.example.com/realms/r1/.well-known/openid-configuration"
            );
            assert_eq!(
                remote.settings.cluster_for(uri),
                "outbound|443||login.example.com"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The Istio manifests in `examples/istio/`: every `WasmPlugin` is set up as the README says
/// (phase, fail strategy, URL, digest), and its `pluginConfig` goes through the filter's real
/// parser with the node metadata a sidecar or gateway it selects would carry; every `jwksUri`
/// host is reachable through the Istio cluster a `ServiceEntry` in the same file creates.
#[test]
fn istio_manifests_configure_the_filter() {
    use mesh_authn::config::NodeMetadata;
    use serde::Deserialize as _;
    use serde_json::Value;

    let files = [
        (
            "sidecar-httpbin.yaml",
            include_str!("../../examples/istio/sidecar-httpbin.yaml"),
        ),
        (
            "ingress-gateway.yaml",
            include_str!("../../examples/istio/ingress-gateway.yaml"),
        ),
        (
            "mesh-wide.yaml",
            include_str!("../../examples/istio/mesh-wide.yaml"),
        ),
    ];
    let mut plugins = 0;
    for (name, text) in files {
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        // `outbound|<port>||<host>` clusters the ServiceEntries of this file create.
        let mut clusters = Vec::new();
        for se in docs.iter().filter(|d| d["kind"] == "ServiceEntry") {
            for host in se["spec"]["hosts"].as_array().unwrap() {
                for port in se["spec"]["ports"].as_array().unwrap() {
                    clusters.push(format!(
                        "outbound|{}||{}",
                        port["number"],
                        host.as_str().unwrap()
                    ));
                }
            }
        }
        for plugin in docs.iter().filter(|d| d["kind"] == "WasmPlugin") {
            plugins += 1;
            let spec = &plugin["spec"];
            assert_eq!(spec["phase"], "AUTHN", "{name}");
            assert_eq!(spec["failStrategy"], "FAIL_CLOSE", "{name}");
            assert_eq!(spec["type"], "HTTP", "{name}");
            assert!(
                spec["url"].as_str().unwrap().starts_with("oci://"),
                "{name}"
            );
            assert_eq!(spec["sha256"].as_str().unwrap().len(), 64, "{name}");
            // Istio hands the plugin its `pluginConfig` (a Struct) as JSON text.
            let config_json = spec["pluginConfig"].to_string();
            assert!(
                spec["pluginConfig"].get("workload").is_none(),
                "{name}: the workload comes from the node metadata"
            );
            // The workloads the WasmPlugin selects: its namespace and selector labels; without
            // a selector in the root namespace, a sample workload elsewhere.
            let namespace = plugin["metadata"]["namespace"].as_str().unwrap();
            let labels: Vec<(Vec<u8>, Vec<u8>)> = spec["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_str().unwrap().into()))
                        .collect()
                })
                .unwrap_or_else(|| vec![(b"app".to_vec(), b"httpbin".to_vec())]);
            let namespace = if spec.get("selector").is_none() {
                "foo"
            } else {
                namespace
            };
            let node = NodeMetadata {
                namespace: Some(namespace.as_bytes().to_vec()),
                labels: Some(labels),
            };
            let config = FilterConfig::parse_with_node(config_json.as_bytes(), &node)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                !config.request_authn.providers().is_empty(),
                "{name}: no rule applies to {namespace}: {}",
                config.summary
            );
            for source in &config.remote_jwks.sources {
                let cluster = config.remote_jwks.settings.cluster_for(source.first_uri());
                assert!(
                    clusters.contains(&cluster),
                    "{name}: {} is fetched through {cluster}, which no ServiceEntry here creates ({clusters:?})",
                    source.first_uri().text
                );
            }
        }
    }
    assert_eq!(plugins, 3);
}

/// `examples/policies/` are plain Istio resources: each one parses on its own.
#[test]
fn policy_files_parse() {
    for (name, text, workload) in [
        (
            "peer-strict-namespace",
            include_str!("../../examples/policies/peer-strict-namespace.yaml"),
            "{namespace: foo, labels: {app: any}}",
        ),
        (
            "peer-strict-workload",
            include_str!("../../examples/policies/peer-strict-workload.yaml"),
            "{namespace: foo, labels: {app: prod}}",
        ),
        (
            "peer-strict-port-disable",
            include_str!("../../examples/policies/peer-strict-port-disable.yaml"),
            "{namespace: foo, labels: {app: prod}}",
        ),
        (
            "request-authn-httpbin",
            include_str!("../../examples/policies/request-authn-httpbin.yaml"),
            "{namespace: foo, labels: {app: httpbin}}",
        ),
        (
            "request-authn-ingress",
            include_str!("../../examples/policies/request-authn-ingress.yaml"),
            "{namespace: istio-system, labels: {istio: ingressgateway}}",
        ),
    ] {
        let config = format!("workload: {workload}\npolicies: |\n{}", indent(text));
        let parsed =
            FilterConfig::parse(config.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !parsed.summary.contains("not selected: [foo")
                && !parsed.summary.contains("not selected: [istio-system"),
            "{name}: {}",
            parsed.summary
        );
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
