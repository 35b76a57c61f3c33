//! The plugin configuration, typed: the workload, the `jwks:` section and the Istio resources
//! as `kubectl get -o json` would print them, rendered as JSON (which the filter reads as the
//! YAML it is). Every test and tool that needs a well-formed configuration builds it here;
//! only tests of malformed text (`bad_config.rs`) write YAML by hand.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// The default workload's namespace.
pub const WORKLOAD_NS: &str = "foo";

/// One `JWTRule`, with the fields the tests and benchmarks vary; any other field (or a field
/// with a value of the wrong type) goes into `extra`, which is written last and wins.
#[derive(Clone, Default)]
pub struct Rule {
    pub issuer: String,
    pub audiences: Vec<&'static str>,
    /// The inline `jwks`; not written when empty.
    pub jwks: String,
    pub jwks_uri: Option<String>,
    pub from_headers: Vec<(&'static str, &'static str)>,
    pub from_params: Vec<&'static str>,
    pub from_cookies: Vec<&'static str>,
    /// `forwardOriginalToken: true`; not written when false.
    pub forward: bool,
    pub payload_header: Option<&'static str>,
    pub claims: Vec<(&'static str, &'static str)>,
    /// `presence: REQUIRED`.
    pub required: bool,
    pub extra: Vec<(&'static str, Value)>,
}

impl Rule {
    /// The rule as `spec.jwtRules[]` JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"issuer": self.issuer});
        if !self.audiences.is_empty() {
            v["audiences"] = json!(self.audiences);
        }
        if !self.jwks.is_empty() {
            v["jwks"] = json!(self.jwks);
        }
        if let Some(uri) = &self.jwks_uri {
            v["jwksUri"] = json!(uri);
        }
        if !self.from_headers.is_empty() {
            v["fromHeaders"] = self
                .from_headers
                .iter()
                .map(|(n, p)| json!({"name": n, "prefix": p}))
                .collect();
        }
        if !self.from_params.is_empty() {
            v["fromParams"] = json!(self.from_params);
        }
        if !self.from_cookies.is_empty() {
            v["fromCookies"] = json!(self.from_cookies);
        }
        if self.forward {
            v["forwardOriginalToken"] = json!(true);
        }
        if let Some(h) = self.payload_header {
            v["outputPayloadToHeader"] = json!(h);
        }
        if !self.claims.is_empty() {
            v["outputClaimToHeaders"] = self
                .claims
                .iter()
                .map(|(h, c)| json!({"header": h, "claim": c}))
                .collect();
        }
        if self.required {
            v["presence"] = json!("REQUIRED");
        }
        for (key, value) in &self.extra {
            v[*key] = value.clone();
        }
        v
    }
}

/// One `RequestAuthentication` resource.
#[derive(Clone)]
pub struct Policy {
    pub name: &'static str,
    pub namespace: &'static str,
    /// `spec.selector.matchLabels`; no selector when `None`.
    pub selector: Option<Vec<(&'static str, &'static str)>>,
    pub rules: Vec<Rule>,
}

impl Policy {
    /// `name` in the workload's namespace, no selector: it applies to the workload.
    pub fn new(name: &'static str, rules: Vec<Rule>) -> Policy {
        Policy {
            name,
            namespace: WORKLOAD_NS,
            selector: None,
            rules,
        }
    }

    /// The resource as JSON.
    pub fn to_json(&self) -> Value {
        let mut spec =
            json!({"jwtRules": self.rules.iter().map(Rule::to_json).collect::<Vec<_>>()});
        if let Some(sel) = &self.selector {
            spec["selector"] = json!({"matchLabels": labels(sel)});
        }
        resource("RequestAuthentication", self.name, self.namespace, spec)
    }
}

/// One `PeerAuthentication` resource; `spec` as the resource has it.
#[derive(Clone)]
pub struct PeerPolicy {
    pub name: &'static str,
    pub namespace: &'static str,
    pub spec: Value,
}

impl PeerPolicy {
    /// The resource as JSON.
    pub fn to_json(&self) -> Value {
        resource(
            "PeerAuthentication",
            self.name,
            self.namespace,
            self.spec.clone(),
        )
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn resource(kind: &str, name: &str, namespace: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// A whole plugin configuration. [`PluginConfig::new`] is workload `foo` labelled
/// `app=httpbin` with no policies.
#[derive(Clone)]
pub struct PluginConfig {
    fields: Map<String, Value>,
    policies: Vec<Value>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig::new()
    }
}

impl PluginConfig {
    /// Workload `foo` labelled `app=httpbin`, no policies.
    pub fn new() -> PluginConfig {
        PluginConfig {
            fields: Map::new(),
            policies: Vec::new(),
        }
        .workload(WORKLOAD_NS, &[("app", "httpbin")])
    }

    /// The workload: `namespace` and `labels` (the `labels` field left out when empty).
    pub fn workload(mut self, namespace: &str, labels_: &[(&str, &str)]) -> PluginConfig {
        let mut w = json!({"namespace": namespace});
        if !labels_.is_empty() {
            w["labels"] = json!(labels(labels_));
        }
        self.fields.insert("workload".to_owned(), w);
        self
    }

    /// No `workload` field: the filter takes it from Envoy's node metadata.
    pub fn without_workload(mut self) -> PluginConfig {
        self.fields.remove("workload");
        self
    }

    /// The `jwks:` section: every authority in `clusters` mapped to its Envoy cluster, plus
    /// `settings` (`cacheDuration`, `allowSymmetricKeys`, ...).
    pub fn jwks(mut self, clusters: &[(String, &str)], settings: &[(&str, Value)]) -> PluginConfig {
        let mut section = Map::new();
        section.insert(
            "clusters".to_owned(),
            clusters
                .iter()
                .map(|(authority, cluster)| (authority.clone(), json!(cluster)))
                .collect::<Map<_, _>>()
                .into(),
        );
        for (key, value) in settings {
            section.insert((*key).to_owned(), value.clone());
        }
        self.fields.insert("jwks".to_owned(), section.into());
        self
    }

    /// A top-level field other than `workload`, `jwks` and `policies` (`trustDomain`, ...).
    pub fn set(mut self, key: &str, value: Value) -> PluginConfig {
        self.fields.insert(key.to_owned(), value);
        self
    }

    /// Appends a RequestAuthentication.
    pub fn policy(mut self, policy: &Policy) -> PluginConfig {
        self.policies.push(policy.to_json());
        self
    }

    /// Appends every RequestAuthentication of `policies`.
    pub fn policies(self, policies: &[Policy]) -> PluginConfig {
        policies.iter().fold(self, PluginConfig::policy)
    }

    /// Appends a PeerAuthentication.
    pub fn peer_policy(mut self, policy: &PeerPolicy) -> PluginConfig {
        self.policies.push(policy.to_json());
        self
    }

    /// Appends a resource the typed policies do not model (another `apiVersion`, more
    /// metadata), as the resource has it.
    pub fn raw_policy(mut self, resource: Value) -> PluginConfig {
        self.policies.push(resource);
        self
    }

    /// The configuration as the text Envoy passes to the filter.
    pub fn render(&self) -> String {
        let mut v = self.fields.clone();
        v.insert("policies".to_owned(), Value::Array(self.policies.clone()));
        Value::Object(v).to_string()
    }
}
