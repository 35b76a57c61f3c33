//! What the files on the command line hold, as plugin configurations the filter's own parser
//! reads: a plugin configuration file as it is (byte for byte, so its errors are the filter's);
//! each `WasmPlugin`'s `spec.pluginConfig`, with the deployment traps the README documents; and
//! the Istio resources of every other document (`kubectl get -o yaml` output, a `List`,
//! multi-document YAML) gathered into one `policies` list.

use std::io::Read as _;
use std::path::Path;

use mesh_authn::config::{NodeMetadata, DEFAULT_ROOT_NAMESPACE};
use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::workload::node_of;

/// One configuration to run through the filter's parser.
pub struct Unit {
    /// Where it came from (`FILE`, `FILE: WasmPlugin ns/name`, `FILE, FILE: Istio resources`).
    pub origin: String,
    /// What it is, for the report.
    pub kind: &'static str,
    /// The plugin configuration bytes.
    pub bytes: Vec<u8>,
    /// Prefix of the filter's field paths in the input (`spec.pluginConfig.` for a plugin).
    pub path_prefix: &'static str,
    /// The workload a plugin's selector names (its node metadata), when it names one.
    pub plugin_node: Option<NodeMetadata>,
    /// For gathered resources: where `policies[i]` came from.
    pub sources: Vec<String>,
    /// Deployment traps and skipped documents.
    pub warnings: Vec<String>,
    /// Things said plainly that are not problems of the input.
    pub notes: Vec<String>,
}

/// Kinds the filter reads from `policies`.
const POLICY_KINDS: [&str; 3] = [
    "RequestAuthentication",
    "PeerAuthentication",
    "AuthorizationPolicy",
];

/// Reads every file into units. A file that is not YAML at all is handed to the filter's
/// parser as a plugin configuration, which says why.
pub fn load(files: &[impl AsRef<Path>]) -> Result<Vec<Unit>, String> {
    let mut units = Vec::new();
    let mut resources: Vec<Value> = Vec::new();
    let mut sources = Vec::new();
    let mut resource_files: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    for file in files {
        let file = file.as_ref();
        let name = file.display().to_string();
        let text = read(file)?;
        let docs = match documents(&text) {
            Ok(docs) => docs,
            Err(_) => {
                units.push(plugin_config(&name, text.into_bytes()));
                continue;
            }
        };
        if let [only] = docs.as_slice() {
            if only.is_object() && only.get("kind").is_none() {
                units.push(plugin_config(&name, text.into_bytes()));
                continue;
            }
        }
        let first_plugin = units.len();
        let mut skipped = Vec::new();
        for (i, doc) in docs.into_iter().enumerate() {
            let at = format!("{name} document {}", i + 1);
            let items = match doc.get("kind").and_then(Value::as_str) {
                Some("List") => match doc.get("items") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .map(|(j, item)| (format!("{at} items[{j}]"), item.clone()))
                        .collect(),
                    _ => return Err(format!("{at}: a `kind: List` needs an `items` list")),
                },
                _ => vec![(at, doc)],
            };
            for (at, item) in items {
                let kind = item.get("kind").and_then(Value::as_str).unwrap_or_default();
                let id = resource_id(&item);
                match kind {
                    "WasmPlugin" => {
                        units.push(wasm_plugin(&format!("{at}: WasmPlugin {id}"), &item))
                    }
                    k if POLICY_KINDS.contains(&k) => {
                        sources.push(format!("{at}: {kind} {id}"));
                        resources.push(item);
                        if !resource_files.contains(&name) {
                            resource_files.push(name.clone());
                        }
                    }
                    "" => {
                        return Err(format!(
                            "{at}: neither a plugin configuration (one mapping with `policies`) \
                             nor a Kubernetes resource (no `kind`)"
                        ))
                    }
                    other => skipped.push(format!(
                        "{at}: {other} {id} skipped: not read by mesh-authn"
                    )),
                }
            }
        }
        // Said once, on this file's first plugin, or with the resources.
        match units.get_mut(first_plugin) {
            Some(plugin) => plugin.notes.extend(skipped),
            None => notes.extend(skipped),
        }
    }
    if !resources.is_empty() || notes.iter().any(|n| n.contains("AuthorizationPolicy")) {
        let config = json!({ "policies": resources });
        units.push(Unit {
            origin: format!("{}: Istio resources", resource_files.join(", ")),
            kind: "Istio resources",
            bytes: config.to_string().into_bytes(),
            path_prefix: "",
            plugin_node: None,
            sources,
            warnings: Vec::new(),
            notes,
        });
    }
    Ok(units)
}

fn read(file: &Path) -> Result<String, String> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
}

/// The YAML documents of a file (empty documents dropped).
fn documents(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn plugin_config(name: &str, bytes: Vec<u8>) -> Unit {
    let notes = Vec::new();
    Unit {
        origin: name.to_owned(),
        kind: "plugin configuration",
        bytes,
        path_prefix: "",
        plugin_node: None,
        sources: Vec::new(),
        warnings: Vec::new(),
        notes,
    }
}

/// `namespace/name` of a resource.
fn resource_id(doc: &Value) -> String {
    let meta = |k: &str| {
        doc.get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    format!("{}/{}", meta("namespace"), meta("name"))
}

/// A `WasmPlugin`: its `pluginConfig`, the workload its selector names, and the README's
/// deployment traps.
fn wasm_plugin(origin: &str, plugin: &Value) -> Unit {
    let spec = plugin.get("spec").cloned().unwrap_or(Value::Null);
    let config = spec.get("pluginConfig").cloned().unwrap_or(Value::Null);
    let namespace = plugin
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let labels: Vec<(String, String)> = spec
        .get("selector")
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let root = config
        .get("rootNamespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_ROOT_NAMESPACE);
    // A root-namespace plugin without a selector lands on every proxy: no one workload.
    let everywhere = namespace.is_empty() || namespace == root && labels.is_empty();
    let plugin_node = (!everywhere).then(|| node_of(namespace, &labels));
    let mut unit = Unit {
        origin: origin.to_owned(),
        kind: "WasmPlugin",
        bytes: if config.is_null() {
            Vec::new()
        } else {
            config.to_string().into_bytes()
        },
        path_prefix: "spec.pluginConfig.",
        plugin_node,
        sources: Vec::new(),
        warnings: traps(&spec, labels.iter().any(|(k, _)| k == "istio")),
        notes: Vec::new(),
    };
    if config.is_null() {
        unit.warnings
            .push("spec.pluginConfig is missing: the filter refuses to start without it".into());
    }
    unit
}

/// The deployment traps of README "Deploying in Istio", each a sentence naming the field.
fn traps(spec: &Value, selects_gateway: bool) -> Vec<String> {
    let mut out = Vec::new();
    let matches = spec.get("match");
    let server_only = matches == Some(&json!([{"mode": "SERVER"}]));
    if selects_gateway {
        if matches.is_some_and(|m| m.to_string().contains("SERVER")) {
            out.push(
                "spec.match: mode SERVER on a gateway plugin installs nothing (istiod counts a \
                 gateway's listeners as CLIENT); leave `match` out"
                    .to_owned(),
            );
        }
    } else if !server_only {
        out.push(
            "spec.match: a sidecar plugin needs `match: [{mode: SERVER}]`; without it istiod \
             also installs it on outbound listeners, where the app's own calls meet STRICT \
             (403) and its outgoing tokens are checked and stripped"
                .to_owned(),
        );
    }
    let url = spec.get("url").and_then(Value::as_str).unwrap_or_default();
    if url.contains("REGISTRY.example.com") || url.contains("REGISTRY/") {
        out.push(format!(
            "spec.url: `{url}` is the README's placeholder registry: a module Istio cannot \
             fetch, with FAIL_CLOSE, makes Istio deny every request to the workload"
        ));
    }
    match spec.get("sha256") {
        None => {}
        Some(Value::String(digest)) => {
            let hex = digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let repeated = digest.chars().all(|c| digest.starts_with(c));
            if !hex || repeated {
                out.push(format!(
                    "spec.sha256: `{digest}` is not a real digest (64 lower-case hex digits, \
                     without `sha256:`); a wrong digest fails the fetch and, with FAIL_CLOSE, \
                     denies every request"
                ));
            } else if url.starts_with("file://") {
                out.push("spec.sha256: Istio ignores sha256 for file:// URLs".to_owned());
            }
        }
        Some(other) => out.push(format!(
            "spec.sha256: {other} is not a string (quote the digest: YAML 1.1 reads digits as a \
             number, and kubectl refuses it)"
        )),
    }
    // FAIL_CLOSE is the enum's zero value: absent is fine.
    if spec.get("failStrategy").and_then(Value::as_str) == Some("FAIL_OPEN") {
        out.push(
            "spec.failStrategy: FAIL_OPEN lets every request through when the module cannot \
             load or refuses its configuration; use FAIL_CLOSE"
                .to_owned(),
        );
    }
    let phase = spec.get("phase").and_then(Value::as_str);
    if phase != Some("AUTHN") {
        out.push(format!(
            "spec.phase: {} — the README's manifests use AUTHN, so mesh-authn runs before \
             Istio's jwt_authn and authorization filters",
            phase.unwrap_or("absent")
        ));
    }
    out
}
