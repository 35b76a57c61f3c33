//! Istio policies described once and rendered two ways: as the RequestAuthentication resources
//! mesh-authn reads, and as the native `envoy.filters.http.jwt_authn` configuration istiod
//! generates for them (`pilot/pkg/security/authn/policy_applier.go#convertToEnvoyJwtConfig`,
//! reference §1.3), written independently of the filter's code. Used by the differential test
//! and the side-by-side benchmark, plus Envoy bootstraps for both.

use serde_json::{json, Value};

use crate::plugin_config::PluginConfig;
pub use crate::plugin_config::{Policy, Rule, WORKLOAD_NS};

/// The workload's labels.
pub const WORKLOAD_LABELS: &[(&str, &str)] = &[("app", "httpbin"), ("version", "v1")];
/// Istio's root namespace.
pub const ROOT_NS: &str = "istio-system";

/// The plugin configuration for the workload modelled here (`foo`, [`WORKLOAD_LABELS`]) with
/// `policies`.
pub fn plugin_config(policies: &[Policy]) -> String {
    PluginConfig::new()
        .workload(WORKLOAD_NS, WORKLOAD_LABELS)
        .policies(policies)
        .render()
}

/// istiod's scoping, written independently: policies in the workload's namespace or the root
/// namespace whose selector labels are all on the workload.
pub fn applicable_rules(policies: &[Policy]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for p in policies {
        if p.namespace != WORKLOAD_NS && p.namespace != ROOT_NS {
            continue;
        }
        let selected = p.selector.as_ref().is_none_or(|sel| {
            sel.iter()
                .all(|(k, v)| WORKLOAD_LABELS.iter().any(|(wk, wv)| wk == k && wv == v))
        });
        if selected {
            rules.extend(p.rules.iter().cloned());
        }
    }
    // newPolicyApplier: sorted by issuer (a stable sort keeps document order for ties).
    rules.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    rules
}

/// `convertToEnvoyJwtConfig`: a provider `origins-<i>` per rule, the requirement tree,
/// `bypass_cors_preflight`. `None` when no rule applies (istiod adds no filter).
///
/// `presence: REQUIRED` follows istio/istio #60830 (merged after the reference snapshot, from
/// its description): required rules as bare providers, optional ones with `allow_missing`,
/// all in one `requires_all`.
pub fn native_jwt_authn(policies: &[Policy]) -> Option<Value> {
    let rules = applicable_rules(policies);
    if rules.is_empty() {
        return None;
    }
    let mut providers = serde_json::Map::new();
    for (i, r) in rules.iter().enumerate() {
        let mut p = json!({
            "local_jwks": {"inline_string": r.jwks},
            "forward": r.forward,
            "payload_in_metadata": "payload",
            "normalize_payload_in_metadata": {"space_delimited_claims": ["permission", "scope"]},
        });
        if !r.issuer.is_empty() {
            p["issuer"] = json!(r.issuer);
        }
        if !r.audiences.is_empty() {
            p["audiences"] = json!(r.audiences);
        }
        if !r.from_headers.is_empty() {
            p["from_headers"] = r
                .from_headers
                .iter()
                .map(|(n, pre)| json!({"name": n, "value_prefix": pre}))
                .collect();
        }
        if !r.from_params.is_empty() {
            p["from_params"] = json!(r.from_params);
        }
        if !r.from_cookies.is_empty() {
            p["from_cookies"] = json!(r.from_cookies);
        }
        if let Some(h) = r.payload_header {
            p["forward_payload_header"] = json!(h);
        }
        if !r.claims.is_empty() {
            p["claim_to_headers"] = r
                .claims
                .iter()
                .map(|(h, c)| json!({"header_name": h, "claim_name": c}))
                .collect();
        }
        providers.insert(format!("origins-{i}"), p);
    }
    let name = |i: usize| json!({"provider_name": format!("origins-{i}")});
    let optional =
        |i: usize| json!({"requires_any": {"requirements": [name(i), {"allow_missing": {}}]}});
    let requires = if rules.iter().any(|r| r.required) {
        // istio/istio #60830: a required rule is a bare provider, an optional one keeps
        // allow_missing, all under one requires_all, without the outer requires_any.
        let mut all: Vec<Value> = (0..rules.len())
            .map(|i| {
                if rules[i].required {
                    name(i)
                } else {
                    optional(i)
                }
            })
            .collect();
        // Envoy refuses a requires_all of fewer than two; one rule is its bare provider.
        if all.len() == 1 {
            all.remove(0)
        } else {
            json!({"requires_all": {"requirements": all}})
        }
    } else if rules.len() == 1 {
        optional(0)
    } else {
        let mut any: Vec<Value> = (0..rules.len()).map(name).collect();
        let inner: Vec<Value> = (0..rules.len()).map(optional).collect();
        any.push(json!({"requires_all": {"requirements": inner}}));
        json!({"requires_any": {"requirements": any}})
    };
    Some(json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": requires}],
            "bypass_cors_preflight": true,
        }
    }))
}

/// A bootstrap like `envoy/mesh-authn.yaml`, with native jwt_authn (or nothing) before the
/// router, routing to the upstream at `127.0.0.1:upstream_port`.
pub fn native_bootstrap(jwt_authn: Option<Value>, upstream_port: u16) -> String {
    bootstrap(
        jwt_authn.into_iter().collect(),
        json!({"cluster": "upstream"}),
        upstream_port,
    )
}

/// The `route` of a route that answers 200 itself (`direct_response`), so that a benchmark
/// measures the filters and not an upstream.
pub fn direct_response_route() -> Value {
    json!({"status": 200, "body": {"inline_string": "ok"}})
}

/// `jwt_cache_config` on every provider of a native jwt_authn filter: Envoy's verified-token
/// cache (an LRU of `size` tokens).
pub fn with_jwt_cache(mut jwt_authn: Value, size: u32) -> Value {
    if let Some(providers) = jwt_authn["typed_config"]["providers"].as_object_mut() {
        for p in providers.values_mut() {
            p["jwt_cache_config"] = json!({"jwt_cache_size": size});
        }
    }
    jwt_authn
}

/// An Envoy Wasm HTTP filter running `wasm_path` with `configuration` (a string), failing
/// closed, as `envoy/mesh-authn.yaml` has it.
pub fn wasm_filter(name: &str, wasm_path: &str, configuration: &str) -> Value {
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": name,
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
                "failure_policy": "FAIL_CLOSED",
            }
        }
    })
}

/// A bootstrap with `filters` before the router and one route `route` for every path; the
/// `upstream` cluster is `127.0.0.1:upstream_port`. Admin and listener ports are 0.
pub fn bootstrap(filters: Vec<Value>, route: Value, upstream_port: u16) -> String {
    let mut filters = filters;
    let route_key = if route.get("status").is_some() {
        "direct_response"
    } else {
        "route"
    };
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    let addr = |port: u16| json!({"socket_address": {"address": "127.0.0.1", "port_value": port}});
    json!({
        "admin": {"address": addr(0)},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": addr(0),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        // As envoy/mesh-authn.yaml (istiod's sidecar inbound options).
                        "normalize_path": true,
                        "merge_slashes": false,
                        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                        "use_remote_address": false,
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, route_key: route}]
                        }]},
                        "http_filters": filters,
                    }
                }]}]
            }],
            "clusters": [{
                "name": "upstream", "type": "STATIC", "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": addr(upstream_port)}}
                ]}]}
            }]
        }
    })
    .to_string()
}
