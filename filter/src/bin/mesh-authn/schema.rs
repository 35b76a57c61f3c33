//! `mesh-authn schema`: the plugin configuration's JSON Schema. The top level comes from the
//! parser's own types ([`mesh_authn::config::schema`]); the `policies` items from Istio's CRD
//! schemas for RequestAuthentication, PeerAuthentication and AuthorizationPolicy (istio/istio
//! `manifests/charts/base/files/crd-all.gen.yaml`, vendored with its provenance in
//! filter/tests/fixtures/PROVENANCE.md), as `kubectl apply` validates them.

use serde::Deserialize as _;
use serde_json::{json, Map, Value};

/// Istio's CRDs (see the module doc for provenance).
const CRDS: &str = include_str!("../../../tests/fixtures/istio/crd-all.gen.yaml");

/// The kinds the filter reads from `policies`.
const KINDS: [&str; 3] = [
    "RequestAuthentication",
    "PeerAuthentication",
    "AuthorizationPolicy",
];

/// The schema, as pretty JSON with a final newline (the committed file's form).
pub fn text() -> Result<String, String> {
    let mut schema = mesh_authn::config::schema::plugin_config();
    let mut defs = Map::new();
    let mut resources = Vec::new();
    for kind in KINDS {
        defs.insert(kind.to_owned(), resource(kind)?);
        resources.push(json!({"$ref": format!("#/$defs/{kind}")}));
    }
    let kinds = resources.clone();
    resources.push(json!({
        "description": "`kubectl get ... -o yaml` output: its items are read as policies",
        "type": "object",
        "required": ["kind", "items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"const": "List"},
            "metadata": {"type": "object"},
            "items": {"type": "array", "items": {"anyOf": kinds}}
        }
    }));
    let policies = json!({
        "description": "Istio resources as `kubectl get -o yaml` prints them, or one string of \
                        `---`-separated YAML documents",
        "anyOf": [
            {"type": "array", "items": {"anyOf": resources}},
            {"type": "string"}
        ]
    });
    let obj = schema
        .as_object_mut()
        .ok_or("the derived schema is not an object")?;
    obj.insert("title".into(), json!("mesh-authn plugin configuration"));
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("policies".into(), policies);
    }
    let all_defs = obj
        .entry("$defs")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(all) = all_defs.as_object_mut() {
        all.extend(defs);
        all.remove("Policies");
    }
    let mut out = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(out)
}

/// One resource kind: the k8s envelope around the CRD's `spec` schema (served version `v1`;
/// `v1beta1` has the same schema).
fn resource(kind: &str) -> Result<Value, String> {
    for doc in serde_yaml_ng::Deserializer::from_str(CRDS) {
        let crd = Value::deserialize(doc).map_err(|e| format!("vendored CRDs: {e}"))?;
        let field = |pointer: &str| crd.pointer(pointer).cloned().unwrap_or(Value::Null);
        if field("/spec/names/kind") != json!(kind) || field("/spec/group") != "security.istio.io" {
            continue;
        }
        let versions = field("/spec/versions")
            .as_array()
            .cloned()
            .unwrap_or_default();
        let v1 = versions
            .iter()
            .find(|v| v.get("name") == Some(&json!("v1")))
            .ok_or_else(|| format!("vendored CRDs: {kind} has no v1"))?;
        let mut spec = v1
            .pointer("/schema/openAPIV3Schema/properties/spec")
            .cloned()
            .ok_or_else(|| format!("vendored CRDs: {kind} v1 has no spec schema"))?;
        strict(&mut spec);
        return Ok(json!({
            "description": format!("Istio {kind} (spec: Istio's CRD schema, security.istio.io/v1)"),
            "type": "object",
            "required": ["apiVersion", "kind", "metadata"],
            "properties": {
                "apiVersion": {"enum": ["security.istio.io/v1", "security.istio.io/v1beta1"]},
                "kind": {"const": kind},
                "metadata": {
                    "type": "object",
                    "required": ["name", "namespace"],
                    "properties": {
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                        "creationTimestamp": {"type": "string"}
                    }
                },
                "spec": spec,
                "status": {}
            },
            "additionalProperties": false
        }));
    }
    Err(format!("vendored CRDs: no {kind}"))
}

/// Unknown fields refused, as `kubectl apply` with strict field validation (and the filter)
/// refuses them: `additionalProperties: false` on every object schema that lists its
/// properties and does not keep unknown fields.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let closed = map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && map.get("x-kubernetes-preserve-unknown-fields") != Some(&json!(true));
            if closed {
                map.insert("additionalProperties".into(), json!(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}
