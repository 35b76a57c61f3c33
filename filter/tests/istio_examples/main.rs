//! The Istio manifests in `examples/istio/` and the policies in `examples/policies/`, read as
//! `kubectl apply` reads them (YAML 1.1, `yaml11`), validated against Istio's own CRD schemas
//! (`openapi`, with `filter/tests/fixtures/istio/crd-all.gen.yaml`), checked for the deployment
//! properties the README promises (inbound only, no placeholder digest, TLS origination only
//! on the filter's own port, one `DestinationRule` scope per file), and fed through the
//! filter's parser with the node metadata of a workload each plugin selects.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod openapi;
mod yaml11;

use std::path::{Path, PathBuf};

use mesh_authn::config::{FilterConfig, NodeMetadata};
use serde_json::{json, Value};

/// Every `.yaml` file of `examples/istio/` and `examples/policies/`: (name, documents).
fn example_files() -> Vec<(String, Vec<Value>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = ["istio", "policies"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
        .iter()
        .map(|path| {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            let text = std::fs::read_to_string(path).unwrap();
            let docs = yaml11::documents(&text).unwrap_or_err(&name);
            (name, docs)
        })
        .collect()
}

trait UnwrapOrErr<T> {
    fn unwrap_or_err(self, context: &str) -> T;
}

impl<T> UnwrapOrErr<T> for Result<T, String> {
    fn unwrap_or_err(self, context: &str) -> T {
        self.unwrap_or_else(|e| panic!("{context}: {e}"))
    }
}

fn schemas() -> openapi::Schemas {
    let text = include_str!("../fixtures/istio/crd-all.gen.yaml");
    openapi::Schemas::from_crds(&yaml11::documents(text).unwrap())
}

fn plugins(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter().filter(|d| d["kind"] == "WasmPlugin")
}

/// The policies a `pluginConfig` holds: a list, or one string of `---`-separated documents
/// (`kind: List` unwrapped), as the filter accepts them.
fn embedded_policies(plugin: &Value) -> Vec<Value> {
    let policies = &plugin["spec"]["pluginConfig"]["policies"];
    let docs = match policies {
        Value::Array(items) => items.clone(),
        Value::String(text) => yaml11::documents(text).unwrap(),
        other => panic!("pluginConfig.policies: {other}"),
    };
    docs.into_iter()
        .flat_map(|d| match d["kind"].as_str() {
            Some("List") => d["items"].as_array().unwrap().clone(),
            _ => vec![d],
        })
        .collect()
}

/// A plugin for an ingress gateway selects it by Istio's `istio:` label; any other plugin
/// lands on sidecars (no selector in the root namespace: every sidecar of the mesh).
fn selects_gateways(plugin: &Value) -> bool {
    plugin["spec"]["selector"]["matchLabels"]
        .as_object()
        .is_some_and(|labels| labels.contains_key("istio"))
}

/// Each resource, and each policy inside a `pluginConfig`, is one `kubectl apply` would
/// accept: Istio's CRD schema for its kind and version, unknown fields refused, values typed as
/// Kubernetes reads YAML.
#[test]
fn examples_match_istios_crd_schemas() {
    let schemas = schemas();
    let mut errors = Vec::new();
    let mut checked = 0;
    for (name, docs) in example_files() {
        for (i, doc) in docs.iter().enumerate() {
            let path = format!("{name}#{i} {}", doc["kind"].as_str().unwrap_or("?"));
            errors.extend(schemas.validate_resource(doc, &path));
            checked += 1;
            if doc["kind"] == "WasmPlugin" {
                for (j, policy) in embedded_policies(doc).iter().enumerate() {
                    errors.extend(
                        schemas.validate_resource(
                            policy,
                            &format!("{path}.pluginConfig.policies[{j}]"),
                        ),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} resources");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A sidecar or mesh-wide plugin runs on inbound listeners only (`match: [{mode: SERVER}]`):
/// without `match` istiod installs it on every listener of the proxy, outbound included, where
/// the app's own plaintext requests would meet STRICT and its tokens would be stripped; SERVER
/// also keeps a root-namespace plugin off gateways, whose listeners count as CLIENT
/// (istio/istio `pilot/pkg/model/extensions.go`, `workloadModeForListenerClass`).
#[test]
fn sidecar_plugins_run_on_inbound_listeners_only() {
    let mut errors = Vec::new();
    for (name, docs) in example_files() {
        for plugin in plugins(&docs) {
            let matches = &plugin["spec"]["match"];
            if selects_gateways(plugin) {
                // A gateway has only gateway (CLIENT) listeners: no `match` needed, and SERVER
                // would install the plugin nowhere.
                if !matches.is_null() {
                    errors.push(format!("{name}: a gateway plugin with match {matches}"));
                }
            } else if *matches != json!([{"mode": "SERVER"}]) {
                errors.push(format!(
                    "{name}: a sidecar plugin needs `match: [{{mode: SERVER}}]`, has {matches}"
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// No placeholder digest: `sha256` is absent or a real-looking 64-hex string (a string to
/// Kubernetes, which the schema test checks), and never next to a `file://` URL, for which
/// Istio ignores it (`buildDataSource` in `pilot/pkg/model/extensions.go`).
#[test]
fn module_digests_are_real_or_absent() {
    let mut errors = Vec::new();
    let mut plugins_seen = 0;
    for (name, docs) in example_files() {
        for plugin in plugins(&docs) {
            plugins_seen += 1;
            let spec = &plugin["spec"];
            let url = spec["url"].as_str().unwrap_or_default();
            if !(url.starts_with("oci://") || url.starts_with("file://")) {
                errors.push(format!("{name}: url {url} is neither oci:// nor file://"));
            }
            match &spec["sha256"] {
                Value::Null => {}
                Value::String(digest) => {
                    let hex = digest.len() == 64
                        && digest
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                    let placeholder = digest.chars().all(|c| digest.starts_with(c));
                    if !hex || placeholder {
                        errors.push(format!("{name}: sha256 {digest} is a placeholder"));
                    }
                    if url.starts_with("file://") {
                        errors.push(format!("{name}: Istio ignores sha256 for file:// URLs"));
                    }
                }
                other => errors.push(format!(
                    "{name}: sha256 reads as {other} (not a string) under YAML 1.1"
                )),
            }
            // AUTHN runs before Istio's jwt_authn and RBAC; FAIL_CLOSE or FAIL_RELOAD never
            // lets a request through a broken module.
            assert_eq!(spec["phase"], "AUTHN", "{name}");
            assert_eq!(spec["type"], "HTTP", "{name}");
            // README: the manifests order mesh-authn first among AUTHN plugins, and their
            // pluginConfig holds only policies and the JWKS cluster mapping.
            assert_eq!(spec["priority"], 1000, "{name}");
            let keys: Vec<&String> = spec["pluginConfig"].as_object().unwrap().keys().collect();
            assert!(
                keys.iter().all(|k| *k == "policies" || *k == "jwks"),
                "{name}: {keys:?}"
            );
            let fail = spec["failStrategy"].as_str().unwrap_or_default();
            assert!(
                fail == "FAIL_CLOSE" || fail == "FAIL_RELOAD",
                "{name}: {fail}"
            );
        }
    }
    assert_eq!(plugins_seen, 3);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The IdP is reached through a port of its own: a `ServiceEntry` port (HTTP, `targetPort` the
/// IdP's TLS port) with TLS origination on that port only, in a `DestinationRule` with
/// `exportTo`, and `jwks.clusters` sends the filter's fetches there. An app calling
/// `https://<idp>` itself keeps its own TLS (no TLS inside TLS).
#[test]
fn idp_tls_is_originated_only_on_the_filters_own_port() {
    let mut errors = Vec::new();
    for (name, docs) in example_files() {
        // A plugin without selector runs in every namespace; the others in their own.
        let mesh_wide = plugins(&docs).any(|p| p["spec"]["selector"].is_null());
        // (host, port) → the ServiceEntry port entry.
        let mut se_ports = Vec::new();
        for se in docs.iter().filter(|d| d["kind"] == "ServiceEntry") {
            check_export_to(&name, se, mesh_wide, &mut errors);
            for host in se["spec"]["hosts"].as_array().unwrap() {
                for port in se["spec"]["ports"].as_array().unwrap() {
                    se_ports.push((host.as_str().unwrap().to_owned(), port.clone()));
                }
            }
        }
        // outbound|<port>||<host> clusters whose traffic the sidecar encrypts.
        let mut tls_clusters = Vec::new();
        for dr in docs.iter().filter(|d| d["kind"] == "DestinationRule") {
            let spec = &dr["spec"];
            let host = spec["host"].as_str().unwrap();
            check_export_to(&name, dr, mesh_wide, &mut errors);
            if !spec["trafficPolicy"]["tls"].is_null() {
                errors.push(format!(
                    "{name}: DestinationRule for {host} sets tls for every port; originate TLS \
                     only on the filter's own port (portLevelSettings)"
                ));
            }
            for setting in spec["trafficPolicy"]["portLevelSettings"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if setting["tls"].is_null() {
                    continue;
                }
                let number = &setting["port"]["number"];
                let Some((_, port)) = se_ports
                    .iter()
                    .find(|(h, p)| h == host && p["number"] == *number)
                else {
                    errors.push(format!(
                        "{name}: TLS on {host}:{number}, a port no ServiceEntry here declares"
                    ));
                    continue;
                };
                if port["protocol"] != "HTTP"
                    || port["targetPort"].is_null()
                    || port["targetPort"] == *number
                {
                    errors.push(format!(
                        "{name}: {host}:{number} is TLS-originated but not a port of its own \
                         (protocol HTTP, targetPort the IdP's port): {port}"
                    ));
                }
                tls_clusters.push(format!("outbound|{number}||{host}"));
            }
        }
        for plugin in plugins(&docs) {
            let config = &plugin["spec"]["pluginConfig"];
            let mapped: Vec<&str> = config["jwks"]["clusters"]
                .as_object()
                .map(|m| m.values().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            for cluster in &tls_clusters {
                if !mapped.contains(&cluster.as_str()) {
                    errors.push(format!(
                        "{name}: {cluster} is not mapped in jwks.clusters ({mapped:?})"
                    ));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// `exportTo` is set, and reaches the proxies the file's plugins run on and no others: `"*"`
/// next to a mesh-wide plugin, else `"."` (the plugin's namespace, where its workloads run).
fn check_export_to(name: &str, resource: &Value, mesh_wide: bool, errors: &mut Vec<String>) {
    let expected = if mesh_wide {
        json!(["*"])
    } else {
        json!(["."])
    };
    let export_to = &resource["spec"]["exportTo"];
    if *export_to != expected {
        errors.push(format!(
            "{name}: {} {} has exportTo {export_to}, expected {expected}",
            resource["kind"].as_str().unwrap_or("?"),
            resource["metadata"]["name"].as_str().unwrap_or("?")
        ));
    }
}

/// Every `pluginConfig`, as the JSON Istio hands the plugin, goes through the filter's real
/// parser with the node metadata of a sidecar or gateway the plugin selects; at least one rule
/// applies there; and every key set is fetched through a cluster that a `ServiceEntry` of the
/// same file creates, TLS-originated by its `DestinationRule` for `https://`.
#[test]
fn plugin_configs_configure_the_filter() {
    let mut plugins_seen = 0;
    for (name, docs) in example_files() {
        let mut clusters = Vec::new();
        for se in docs.iter().filter(|d| d["kind"] == "ServiceEntry") {
            for host in se["spec"]["hosts"].as_array().unwrap() {
                for port in se["spec"]["ports"].as_array().unwrap() {
                    let host = host.as_str().unwrap();
                    let number = &port["number"];
                    // A port-level `tls` overrides the rule's own.
                    let tls = docs.iter().any(|dr| {
                        let policy = &dr["spec"]["trafficPolicy"];
                        let port_level = policy["portLevelSettings"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|s| s["port"]["number"] == *number && !s["tls"].is_null());
                        let tls = port_level.map_or(&policy["tls"], |s| &s["tls"]);
                        dr["kind"] == "DestinationRule"
                            && dr["spec"]["host"] == host
                            && tls["mode"] == "SIMPLE"
                    });
                    clusters.push((format!("outbound|{number}||{host}"), tls));
                }
            }
        }
        for plugin in plugins(&docs) {
            plugins_seen += 1;
            let spec = &plugin["spec"];
            let config_json = spec["pluginConfig"].to_string();
            assert!(
                spec["pluginConfig"].get("workload").is_none(),
                "{name}: the workload comes from the node metadata"
            );
            let namespace = plugin["metadata"]["namespace"].as_str().unwrap();
            let (namespace, labels): (&str, Labels) =
                match spec["selector"]["matchLabels"].as_object() {
                    Some(m) => (
                        namespace,
                        m.iter()
                            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_str().unwrap().into()))
                            .collect(),
                    ),
                    // Root namespace without selector: a sample workload elsewhere.
                    None => ("foo", vec![(b"app".to_vec(), b"httpbin".to_vec())]),
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
                let uri = source.first_uri();
                let cluster = config.remote_jwks.settings.cluster_for(uri);
                match clusters.iter().find(|(c, _)| *c == cluster) {
                    None => panic!(
                        "{name}: {} is fetched through {cluster}, which no ServiceEntry here creates ({clusters:?})",
                        uri.text
                    ),
                    Some((_, tls)) => assert_eq!(
                        *tls,
                        uri.text.starts_with("https://"),
                        "{name}: {} through {cluster}: TLS origination must match the scheme",
                        uri.text
                    ),
                }
            }
        }
    }
    assert_eq!(plugins_seen, 3);
}

/// `examples/policies/` are plain Istio resources: each also works pasted into `policies`, for
/// a workload it selects.
#[test]
fn policy_files_configure_the_filter() {
    for (name, workload) in [
        (
            "peer-strict-namespace",
            "{namespace: foo, labels: {app: any}}",
        ),
        (
            "peer-strict-workload",
            "{namespace: foo, labels: {app: prod}}",
        ),
        (
            "peer-strict-port-disable",
            "{namespace: foo, labels: {app: prod}}",
        ),
        (
            "request-authn-httpbin",
            "{namespace: foo, labels: {app: httpbin}}",
        ),
        (
            "request-authn-ingress",
            "{namespace: istio-system, labels: {istio: ingressgateway}}",
        ),
        (
            "authz-require-jwt",
            "{namespace: foo, labels: {app: httpbin}}",
        ),
        ("authz-claims", "{namespace: foo, labels: {app: httpbin}}"),
        (
            "authz-path-exemption",
            "{namespace: foo, labels: {app: httpbin}}",
        ),
        (
            "authz-mtls-principal",
            "{namespace: foo, labels: {app: httpbin}}",
        ),
    ] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/policies/{name}.yaml"));
        let text = std::fs::read_to_string(path).unwrap();
        let config = format!("workload: {workload}\npolicies: |\n{}", indent(&text));
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

/// Node metadata labels as the filter takes them.
type Labels = Vec<(Vec<u8>, Vec<u8>)>;

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The README's menu of manifests names every file of `examples/istio/`.
#[test]
fn readme_menu_names_every_manifest() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Deploying in Istio"))
        .unwrap();
    for (name, _) in example_files() {
        if let Some(file) = name.strip_prefix("istio/") {
            assert!(
                section.contains(file),
                "README \"Deploying in Istio\" does not name {file}"
            );
        }
    }
}

/// The YAML 1.1 reading agrees with go-yaml v2 decoding into `interface{}`, the cases of
/// kubernetes-sigs/yaml `goyaml.v2/decode_test.go` (`unmarshalTests`, commit
/// `53ce8bbaa29cd2c835bc0a96e6a849774442d67b`), and with `convertToJSONableObject`'s keys.
#[test]
fn yaml11_reads_scalars_as_kubernetes_does() {
    for (yaml, expected) in [
        ("v: hi", json!({"v": "hi"})),
        ("v: true", json!({"v": true})),
        ("v: 10", json!({"v": 10})),
        ("v: 0b10", json!({"v": 2})),
        ("v: 0xA", json!({"v": 10})),
        ("v: 4294967296", json!({"v": 4294967296_i64})),
        ("v: 0.1", json!({"v": 0.1})),
        ("v: .1", json!({"v": 0.1})),
        ("v: -10", json!({"v": -10})),
        ("v: -.1", json!({"v": -0.1})),
        ("canonical: 6.8523e+5", json!({"canonical": 6.8523e+5})),
        ("expo: 685.230_15e+03", json!({"expo": 685.23015e+03})),
        ("fixed: 685_230.15", json!({"fixed": 685230.15})),
        ("canonical: y", json!({"canonical": true})),
        ("answer: NO", json!({"answer": false})),
        ("logical: True", json!({"logical": true})),
        ("option: on", json!({"option": true})),
        ("canonical: 685230", json!({"canonical": 685230})),
        ("decimal: +685_230", json!({"decimal": 685230})),
        ("octal: 02472256", json!({"octal": 685230})),
        ("hexa: 0x_0A_74_AE", json!({"hexa": 685230})),
        ("bin: 0b1010_0111_0100_1010_1110", json!({"bin": 685230})),
        ("bin: -0b101010", json!({"bin": -42})),
        (
            "bin: -0b1000000000000000000000000000000000000000000000000000000000000000",
            json!({"bin": i64::MIN}),
        ),
        (
            "uint64_max: 18446744073709551615",
            json!({"uint64_max": u64::MAX}),
        ),
        ("empty:", json!({"empty": null})),
        ("canonical: ~", json!({"canonical": null})),
        ("english: null", json!({"english": null})),
        ("seq: [A,1,C]", json!({"seq": ["A", 1, "C"]})),
        ("seq:\n - A\n - 1\n - C", json!({"seq": ["A", 1, "C"]})),
        ("'1': '\"2\"'", json!({"1": "\"2\""})),
        ("v: !!float '1.1'", json!({"v": 1.1})),
        ("v: ! test", json!({"v": "test"})),
        (
            "a: &x 1\nb: &y 2\nc: *x\nd: *y\n",
            json!({"a": 1, "b": 2, "c": 1, "d": 2}),
        ),
        ("a: -b_c", json!({"a": "-b_c"})),
        ("a: +b_c", json!({"a": "+b_c"})),
        ("a: 50cent_of_dollar", json!({"a": "50cent_of_dollar"})),
        ("a: 1:1\n", json!({"a": "1:1"})),
        ("a: 2015-01-01", json!({"a": "2015-01-01"})),
        ("a: !!str 2015-01-01", json!({"a": "2015-01-01"})),
        ("a: \"2015-01-01\"", json!({"a": "2015-01-01"})),
        ("a: 123456e1\n", json!({"a": 123456e1})),
        // Derived from resolve.go: a leading 0 is octal, so a run of zeros is 0; `09` is no
        // octal number but matches yamlStyleFloat; `tRUE` is not in the map.
        (
            "sha256: 0000000000000000000000000000000000000000000000000000000000000000",
            json!({"sha256": 0}),
        ),
        ("v: 09", json!({"v": 9.0})),
        ("v: tRUE", json!({"v": "tRUE"})),
        ("v: '0000'", json!({"v": "0000"})),
        // convertToJSONableObject: non-string keys become strings.
        (
            "5000: {mode: DISABLE}",
            json!({"5000": {"mode": "DISABLE"}}),
        ),
        ("yes: 1", json!({"true": 1})),
    ] {
        assert_eq!(yaml11::documents(yaml).unwrap(), vec![expected], "{yaml}");
    }
    assert!(yaml11::documents("a: 1\na: 2").is_err(), "duplicate keys");
}

/// The schema validator refuses what the API server refuses: the sha256 of the examples this
/// test replaced (an integer under YAML 1.1), an unknown field, an enum typo, a bad pattern.
#[test]
fn schema_validation_refuses_what_kubectl_refuses() {
    let schemas = schemas();
    let plugin = |extra: &str| {
        let text = format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: p, namespace: foo}}\nspec:\n  url: oci://r.example/m:1\n{extra}"
        );
        let docs = yaml11::documents(&text).unwrap();
        schemas.validate_resource(&docs[0], "p")
    };
    assert_eq!(plugin(""), Vec::<String>::new());
    let zeros = "0".repeat(64);
    for (extra, expected) in [
        (
            format!("  sha256: {zeros}\n"),
            "p.spec.sha256: must be of type string, found integer 0",
        ),
        (format!("  sha256: \"{zeros}\"\n"), ""),
        (
            "  sha256: \"ABC\"\n".to_owned(),
            "p.spec.sha256: `ABC` does not match",
        ),
        (
            "  failStrategy: FAIL_CLOSED\n".to_owned(),
            "p.spec.failStrategy: \"FAIL_CLOSED\" is not one of",
        ),
        ("  mode: SERVER\n".to_owned(), "p.spec.mode: unknown field"),
        (
            "  match: [{mode: SERVER, port: 80}]\n".to_owned(),
            "p.spec.match[0].port: unknown field",
        ),
        (
            "  priority: 1.5\n".to_owned(),
            "p.spec.priority: must be of type integer",
        ),
        (
            "  priority: 3000000000\n".to_owned(),
            "p.spec.priority: 3000000000 is not an int32",
        ),
    ] {
        let errors = plugin(&extra);
        if expected.is_empty() {
            assert!(errors.is_empty(), "{extra}: {errors:?}");
        } else {
            assert!(
                errors.len() == 1 && errors[0].starts_with(expected),
                "{extra}: {errors:?}"
            );
        }
    }
    let no_schema =
        yaml11::documents("apiVersion: security.istio.io/v1\nkind: Telemetry\n").unwrap();
    assert_eq!(schemas.validate_resource(&no_schema[0], "t").len(), 1);
}

/// Why one mesh-authn plugin per proxy: `mesh-wide.yaml` and `sidecar-httpbin.yaml` both land on
/// httpbin's inbound listeners, and each, as its own filter, refuses the other's tokens with
/// `Jwt issuer is not configured` (Envoy's status for a token whose issuer no provider has:
/// `OtherGoodToken` in Envoy's `authenticator_test.cc`,
/// `filter/tests/jwt_authn_fixture_tokens.rs`).
#[test]
fn two_plugins_on_one_proxy_refuse_each_others_tokens() {
    use base64::Engine as _;
    use mesh_authn::decision::Decision;
    use mesh_authn::jwt::AuthnStatus;
    use mesh_authn::request::Request;

    let node = NodeMetadata {
        namespace: Some(b"foo".to_vec()),
        labels: Some(vec![(b"app".to_vec(), b"httpbin".to_vec())]),
    };
    let files = example_files();
    let config = |file: &str| {
        let docs = &files.iter().find(|(n, _)| n == file).unwrap().1;
        let plugin = plugins(docs).next().unwrap();
        let json = plugin["spec"]["pluginConfig"].to_string();
        FilterConfig::parse_with_node(json.as_bytes(), &node).unwrap()
    };
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    // Unsigned: the issuer is checked before any key is needed.
    let token = |iss: &str| {
        format!(
            "Bearer {}.{}.c2ln",
            b64(json!({"alg": "RS256", "kid": "k"})),
            b64(json!({"iss": iss, "sub": "s", "exp": 4_685_989_700_u64}))
        )
    };
    for (file, foreign_issuer) in [
        ("istio/mesh-wide.yaml", "testing@secure.istio.io"),
        ("istio/sidecar-httpbin.yaml", "https://idp.example.com"),
    ] {
        let config = config(file);
        let auth = token(foreign_issuer);
        let request = Request::from_pairs(&[(":path", "/"), ("authorization", &auth)]);
        assert_eq!(
            config.request_authn.authenticate(&request, &common::ENV),
            Decision::Deny(AuthnStatus::JwtUnknownIssuer),
            "{file} given a token of {foreign_issuer}"
        );
    }
}
