//! Kubernetes' structural-schema validation of custom resources, for the subset of OpenAPI v3
//! Istio's CRDs use, with unknown fields as errors (`kubectl apply` with strict field
//! validation, the default since Kubernetes 1.27).
//!
//! Checked: `type` (an integer-valued number counts as `integer`, as the API server decodes it),
//! `nullable`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, `minProperties`,
//! `maxProperties`, `pattern`, `format` (`int32`, `byte`, `date-time`), `allOf`, `anyOf`,
//! `oneOf`, `not`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-list-type: map|set` (unique keys). Not checked: CEL rules
//! (`x-kubernetes-validations`), such as "only one of selector/targetRefs" or the URL scheme of
//! `WasmPlugin.url`; the filter's own parser covers the policy ones.
//!
//! As in Kubernetes, only the schema's own `properties` decide which fields are known: the
//! branches of `allOf`/`anyOf`/`oneOf`/`not` only add value checks.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

/// The served versions of Istio's CRDs: `(group, kind, version)` → `openAPIV3Schema`.
pub struct Schemas {
    by_kind: HashMap<(String, String, String), Value>,
    patterns: RefCell<HashMap<String, Regex>>,
}

impl Schemas {
    /// Reads every `CustomResourceDefinition` of a YAML stream (as Kubernetes reads it).
    pub fn from_crds(docs: &[Value]) -> Schemas {
        let mut by_kind = HashMap::new();
        for crd in docs {
            assert_eq!(crd["kind"], "CustomResourceDefinition");
            let group = crd["spec"]["group"].as_str().unwrap();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                if version["served"] != true {
                    continue;
                }
                by_kind.insert(
                    (
                        group.to_owned(),
                        kind.to_owned(),
                        version["name"].as_str().unwrap().to_owned(),
                    ),
                    version["schema"]["openAPIV3Schema"].clone(),
                );
            }
        }
        Schemas {
            by_kind,
            patterns: RefCell::new(HashMap::new()),
        }
    }

    /// Validates one resource (`apiVersion`, `kind`, `metadata`, and what its schema allows);
    /// every problem is one line naming the field path.
    pub fn validate_resource(&self, resource: &Value, path: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let api_version = resource["apiVersion"].as_str().unwrap_or_default();
        let kind = resource["kind"].as_str().unwrap_or_default();
        let Some((group, version)) = api_version.split_once('/') else {
            return vec![format!(
                "{path}.apiVersion: `{api_version}` is not group/version"
            )];
        };
        let Some(schema) =
            self.by_kind
                .get(&(group.to_owned(), kind.to_owned(), version.to_owned()))
        else {
            return vec![format!(
                "{path}: no served CRD version for {kind} in {api_version} (vendored schemas: \
                 filter/tests/fixtures/istio/crd-all.gen.yaml)"
            )];
        };
        let Some(object) = resource.as_object() else {
            return vec![format!("{path}: not an object")];
        };
        for (field, value) in object {
            let field_path = format!("{path}.{field}");
            match field.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => self.validate(&object_meta(), value, &field_path, true, &mut errors),
                _ => match schema["properties"].get(field) {
                    Some(s) => self.validate(s, value, &field_path, true, &mut errors),
                    None => errors.push(format!("{field_path}: unknown field")),
                },
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{path}.{name}: required"));
            }
        }
        errors
    }

    /// `structural`: unknown fields are errors (false inside allOf/anyOf/oneOf/not branches).
    fn validate(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        structural: bool,
        errors: &mut Vec<String>,
    ) {
        if value.is_null() {
            if schema["nullable"] != true {
                errors.push(format!(
                    "{path}: null, and the field is not nullable (Kubernetes silently drops it; \
                     write a value or leave the field out)"
                ));
            }
            return;
        }
        if schema["x-kubernetes-int-or-string"] == true {
            if !(is_integer(value) || value.is_string()) {
                errors.push(format!(
                    "{path}: must be an integer or a string, found {}",
                    describe(value)
                ));
                return;
            }
        } else if let Some(expected) = schema["type"].as_str() {
            let ok = match expected {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => is_integer(value),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("{path}: schema type {other} not handled"),
            };
            if !ok {
                errors.push(format!(
                    "{path}: must be of type {expected}, found {} (YAML as Kubernetes reads it, \
                     YAML 1.1: quote it to make it a string)",
                    describe(value)
                ));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                errors.push(format!(
                    "{path}: {value} is not one of {}",
                    Value::from(allowed.clone())
                ));
            }
        }
        match value {
            Value::String(s) => self.string(schema, s, path, errors),
            Value::Number(_) => number(schema, value, path, errors),
            Value::Array(items) => self.array(schema, items, path, structural, errors),
            Value::Object(map) => self.object(schema, map, path, structural, errors),
            _ => {}
        }
        for sub in schema["allOf"].as_array().into_iter().flatten() {
            self.validate(sub, value, path, false, errors);
        }
        if let Some(any) = schema["anyOf"].as_array() {
            if !any.iter().any(|s| self.passes(s, value, path)) {
                errors.push(format!(
                    "{path}: matches none of anyOf {}",
                    Value::from(any.clone())
                ));
            }
        }
        if let Some(one) = schema["oneOf"].as_array() {
            let passing = one.iter().filter(|s| self.passes(s, value, path)).count();
            if passing != 1 {
                errors.push(format!(
                    "{path}: must match exactly one of oneOf {}, matches {passing}",
                    Value::from(one.clone())
                ));
            }
        }
        if let Some(not) = schema.get("not") {
            if self.passes(not, value, path) {
                errors.push(format!("{path}: must not match {not}"));
            }
        }
    }

    fn passes(&self, schema: &Value, value: &Value, path: &str) -> bool {
        let mut branch = Vec::new();
        self.validate(schema, value, path, false, &mut branch);
        branch.is_empty()
    }

    fn string(&self, schema: &Value, s: &str, path: &str, errors: &mut Vec<String>) {
        let chars = s.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64() {
            if chars < min {
                errors.push(format!("{path}: shorter than {min} characters"));
            }
        }
        if let Some(max) = schema["maxLength"].as_u64() {
            if chars > max {
                errors.push(format!("{path}: longer than {max} characters"));
            }
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            let mut cache = self.patterns.borrow_mut();
            let regex = cache
                .entry(pattern.to_owned())
                .or_insert_with(|| Regex::new(pattern).unwrap());
            if !regex.is_match(s) {
                errors.push(format!("{path}: `{s}` does not match {pattern}"));
            }
        }
        match schema["format"].as_str() {
            Some("byte") => {
                use base64::Engine as _;
                if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                    errors.push(format!("{path}: not base64"));
                }
            }
            Some("date-time") => {
                let rfc3339 = Regex::new(
                    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
                )
                .unwrap();
                if !rfc3339.is_match(s) {
                    errors.push(format!("{path}: `{s}` is not an RFC 3339 date-time"));
                }
            }
            _ => {}
        }
    }

    fn array(
        &self,
        schema: &Value,
        items: &[Value],
        path: &str,
        structural: bool,
        errors: &mut Vec<String>,
    ) {
        let count = items.len() as u64;
        if schema["minItems"].as_u64().is_some_and(|min| count < min) {
            errors.push(format!("{path}: fewer than {} items", schema["minItems"]));
        }
        if schema["maxItems"].as_u64().is_some_and(|max| count > max) {
            errors.push(format!("{path}: more than {} items", schema["maxItems"]));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.validate(
                    item_schema,
                    item,
                    &format!("{path}[{i}]"),
                    structural,
                    errors,
                );
            }
        }
        let keys: Vec<Value> = match schema["x-kubernetes-list-type"].as_str() {
            Some("map") => {
                let key_names = schema["x-kubernetes-list-map-keys"].as_array().unwrap();
                items
                    .iter()
                    .map(|item| {
                        Value::from(
                            key_names
                                .iter()
                                .map(|k| item[k.as_str().unwrap()].clone())
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect()
            }
            Some("set") => items.to_vec(),
            _ => Vec::new(),
        };
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                errors.push(format!("{path}[{i}]: duplicate entry {key}"));
            }
        }
    }

    fn object(
        &self,
        schema: &Value,
        map: &serde_json::Map<String, Value>,
        path: &str,
        structural: bool,
        errors: &mut Vec<String>,
    ) {
        let count = map.len() as u64;
        if schema["minProperties"]
            .as_u64()
            .is_some_and(|min| count < min)
        {
            errors.push(format!(
                "{path}: fewer than {} fields",
                schema["minProperties"]
            ));
        }
        if schema["maxProperties"]
            .as_u64()
            .is_some_and(|max| count > max)
        {
            errors.push(format!(
                "{path}: more than {} fields",
                schema["maxProperties"]
            ));
        }
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
        for (field, value) in map {
            let field_path = format!("{path}.{field}");
            if let Some(s) = schema["properties"].get(field) {
                self.validate(s, value, &field_path, structural, errors);
            } else if let Some(s) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                self.validate(s, value, &field_path, structural, errors);
            } else if structural && !preserve && schema["additionalProperties"] != true {
                errors.push(format!("{field_path}: unknown field"));
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !map.contains_key(name) {
                errors.push(format!("{path}.{name}: required"));
            }
        }
    }
}

fn number(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let n = value.as_f64().unwrap();
    if schema["minimum"].as_f64().is_some_and(|min| n < min) {
        errors.push(format!(
            "{path}: {value} is less than {}",
            schema["minimum"]
        ));
    }
    if schema["maximum"].as_f64().is_some_and(|max| n > max) {
        errors.push(format!(
            "{path}: {value} is more than {}",
            schema["maximum"]
        ));
    }
    if schema["format"] == "int32" && !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&n) {
        errors.push(format!("{path}: {value} is not an int32"));
    }
}

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(n) => format!("integer {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

/// The `metadata` fields a manifest may carry (`ObjectMeta`, k8s.io/apimachinery; the ones the
/// API server sets are accepted too, as `kubectl get -o yaml` prints them).
fn object_meta() -> Value {
    let string = serde_json::json!({"type": "string"});
    let string_map =
        serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}});
    let any_list = serde_json::json!({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    serde_json::json!({
        "type": "object",
        "properties": {
            "name": string,
            "generateName": string,
            "namespace": string,
            "labels": string_map,
            "annotations": string_map,
            "uid": string,
            "resourceVersion": string,
            "generation": {"type": "integer"},
            "creationTimestamp": {"type": "string", "format": "date-time"},
            "deletionTimestamp": {"type": "string", "format": "date-time"},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "finalizers": {"type": "array", "items": string},
            "ownerReferences": any_list,
            "managedFields": any_list,
            "selfLink": string,
        },
    })
}
