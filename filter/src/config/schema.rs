//! The JSON Schema of the plugin configuration, derived (`schemars`) from the very types the
//! parser reads it into, so that it cannot drift from them. Only with the `cli` feature: the
//! wasm build does not carry it. `policies` is Istio's to describe: the CLI fills it in from
//! Istio's own CRD schemas.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

/// `policies`, as the parser takes it: a list of resources, or one string of YAML documents.
pub(super) struct Policies;

impl JsonSchema for Policies {
    fn schema_name() -> Cow<'static, str> {
        "Policies".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Istio resources as `kubectl get -o yaml` prints them (a list, a \
                            `kind: List` among them), or one string of `---`-separated YAML \
                            documents",
            "type": ["array", "string"]
        })
    }
}

/// The schema of the plugin configuration's top level, `policies` left general.
pub fn plugin_config() -> serde_json::Value {
    schemars::schema_for!(super::RawPluginConfig).to_value()
}
