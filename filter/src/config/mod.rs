//! The plugin configuration: parsed once in `on_configure`, compiled into an immutable
//! [`FilterConfig`] that requests only read.
//!
//! ```yaml
//! workload: {namespace: foo, labels: {app: httpbin}}
//! rootNamespace: istio-system          # optional
//! trustDomain: cluster.local           # optional: STRICT peers must be spiffe://cluster.local/…
//! policies:                            # Istio resources as kubectl prints them,
//! - apiVersion: security.istio.io/v1   #   or one string of `---`-separated documents
//!   kind: RequestAuthentication
//!   ...
//! ```

mod authz;
pub mod error;
pub mod istio;
mod jwks;
mod node;
mod peer_authn;
mod request_authn;
#[cfg(feature = "cli")]
pub mod schema;
mod scope;
mod token_cache;
mod yaml;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

pub use error::ConfigError;
use istio::ObjectMeta;
pub use node::NodeMetadata;
use request_authn::RequestAuthnPolicy;
pub use scope::Workload;

use crate::authz::Authz;
use crate::peer_authn::MtlsPolicy;
use crate::remote_jwks::RemoteJwks;
use crate::request_authn::{Provider, RequestAuthn};
use crate::token_cache::TokenCache;

/// Istio's default root namespace (`meshConfig.rootNamespace`).
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// The `apiVersion`s accepted for Istio security resources (one schema).
const API_VERSIONS: [&str; 2] = ["security.istio.io/v1", "security.istio.io/v1beta1"];

/// What the filter enforces for this workload, compiled from the plugin configuration. Not
/// `Clone`: it owns its verified-token cache; share it behind an `Rc`.
#[derive(Debug)]
pub struct FilterConfig {
    /// The merged RequestAuthentication rules that apply to the workload.
    pub request_authn: RequestAuthn,
    /// The composed PeerAuthentication mode (per port) and trust domains.
    pub peer_authn: MtlsPolicy,
    /// The AuthorizationPolicies that apply to the workload.
    pub authz: Authz,
    /// The AuthorizationPolicies of the configuration that do not apply to the workload, as
    /// `namespace/name` and why.
    pub authz_not_selected: Vec<(String, String)>,
    /// Problems to log once at configuration time (policies ignored as istiod ignores them).
    pub warnings: Vec<String>,
    /// One line for the log: what applies, and what was ignored as out of scope.
    pub summary: String,
    /// The remote key sets (`jwksUri`, OIDC discovery) and how they are fetched.
    pub remote_jwks: RemoteJwks,
    /// The verified-token cache of this configuration in this VM (`tokenCache:` bounds).
    pub token_cache: TokenCache,
    /// `exportIdentity`: write the request principal, the claims and the peer principal as
    /// filter state for the filters after this one (off by default: it costs host calls on
    /// every allowed request).
    pub export_identity: bool,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(feature = "cli", schemars(rename = "PluginConfig"))]
struct RawPluginConfig {
    #[serde(default)]
    workload: Option<scope::RawWorkload>,
    #[serde(default)]
    root_namespace: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(with = "schema::Policies"))]
    policies: Option<Value>,
    #[serde(default)]
    trust_domain: Option<String>,
    #[serde(default)]
    trust_domain_aliases: Option<Vec<String>>,
    #[cfg_attr(feature = "cli", schemars(with = "Option<jwks::RawJwks>"))]
    jwks: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(with = "Option<token_cache::RawSettings>"))]
    token_cache: Option<Value>,
    #[serde(default)]
    export_identity: Option<bool>,
}

/// The k8s envelope. `status` is accepted and ignored; anything else unknown is an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Resource {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)] // accepted and ignored: `kubectl get -o yaml` prints it
    status: Option<Value>,
}

impl FilterConfig {
    /// Compiles the plugin configuration at `on_configure` and says so once in the log: the
    /// summary and each warning, or one error line naming the field (`None`: the host then
    /// refuses the plugin).
    pub fn configure(bytes: &[u8], node: &NodeMetadata) -> Option<FilterConfig> {
        match FilterConfig::parse_with_node(bytes, node) {
            Ok(config) => {
                log::info!("configured: {}", config.summary);
                for warning in &config.warnings {
                    log::warn!("configuration warning: {warning}");
                }
                Some(config)
            }
            Err(e) => {
                log::error!("invalid plugin configuration: {e}");
                None
            }
        }
    }

    /// Parses and compiles a plugin configuration (YAML or JSON bytes) that names its
    /// `workload`.
    pub fn parse(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
        FilterConfig::parse_with_node(bytes, &NodeMetadata::default())
    }

    /// Parses and compiles a plugin configuration; each `workload` field it leaves out (or
    /// `workload` as a whole) comes from Envoy's node metadata.
    pub fn parse_with_node(bytes: &[u8], node: &NodeMetadata) -> Result<FilterConfig, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ConfigError::Syntax(format!("not UTF-8: {e}")))?;
        let top = yaml::parse(text, "")?;
        if !top.is_object() {
            return Err(ConfigError::Syntax(
                "expected a mapping with `workload` and `policies` at the top".into(),
            ));
        }
        let raw: RawPluginConfig = typed(top, "")?;
        let workload = Workload::resolve(raw.workload, node)?;
        let root_namespace = raw
            .root_namespace
            .unwrap_or_else(|| DEFAULT_ROOT_NAMESPACE.into());
        if root_namespace.is_empty() {
            return Err(ConfigError::field("rootNamespace", "must not be empty"));
        }
        let policies = policy_documents(raw.policies)?;
        let trust_domains = peer_authn::trust_domains(raw.trust_domain, raw.trust_domain_aliases)?;
        let token_cache = TokenCache::new(token_cache::compile(raw.token_cache)?);
        let mut remote_jwks = RemoteJwks {
            settings: jwks::compile(raw.jwks)?,
            sources: Vec::new(),
        };

        let mut providers = Vec::new();
        let mut applied = Vec::new();
        let mut ignored = Vec::new();
        let mut peer_policies = Vec::new();
        let mut authz_policies = Vec::new();
        for (path, doc) in policies {
            if authz::is_authorization_policy(&doc) {
                let policy = authz::AuthzPolicy::compile(doc, &path, &trust_domains)?;
                authz_policies.push((path, policy));
                continue;
            }
            if peer_authn::is_peer_authentication(&doc) {
                peer_policies.push(peer_authn::PeerPolicy::compile(doc, &path)?);
                continue;
            }
            let policy = RequestAuthnPolicy::compile(doc, &path, &mut remote_jwks)?;
            let id = format!("{}/{}", policy.namespace, policy.name);
            if workload.is_selected(&policy.namespace, policy.selector.as_ref(), &root_namespace) {
                applied.push(id);
                providers.extend(policy.providers);
                if let Some(header) = request_authn::output_token_collision(&providers) {
                    return Err(ConfigError::field(
                        format!("{path}.spec.jwtRules"),
                        format!(
                            "`{header}` is both an output header and a token header of the rules \
                             that apply; output headers are removed from each request before \
                             tokens are looked for, so that token would never be seen"
                        ),
                    ));
                }
            } else {
                ignored.push(id);
            }
        }
        // istiod concatenates the rules of every matching policy and sorts them by issuer
        // (`newPolicyApplier`); the order decides which rule is tried first.
        providers.sort_by(|a: &Provider, b: &Provider| a.issuer.cmp(&b.issuer));
        let peer = peer_authn::compose(&peer_policies, &workload, &root_namespace, &trust_domains)?;
        authz::check_unique(&authz_policies)?;
        let (mut authz_applied, mut authz_ignored) = (Vec::new(), Vec::new());
        let mut authz = Vec::new();
        for (_, p) in authz_policies {
            let id = format!("{}/{}", p.policy.namespace, p.policy.name);
            if workload.is_selected(&p.policy.namespace, p.selector.as_ref(), &root_namespace) {
                authz_applied.push(id);
                authz.push(p.policy);
            } else {
                let why = if p.policy.namespace != workload.namespace
                    && p.policy.namespace != root_namespace
                {
                    format!(
                        "namespace {} is neither the workload's ({}) nor the root namespace ({})",
                        p.policy.namespace, workload.namespace, root_namespace
                    )
                } else {
                    let labels: Vec<String> = p
                        .selector
                        .iter()
                        .flatten()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    format!(
                        "its selector {{{}}} does not match the workload's labels",
                        labels.join(",")
                    )
                };
                authz_ignored.push((id, why));
            }
        }
        let summary = format!(
            "workload {}: {} jwtRules from RequestAuthentication [{}]; not selected: [{}]; {}; \
             AuthorizationPolicy [{}]; not selected: [{}]",
            workload,
            providers.len(),
            applied.join(", "),
            ignored.join(", "),
            peer.summary,
            authz_applied.join(", "),
            authz_ignored
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
        let authz = Authz::new(authz);
        let mut warnings = peer.warnings;
        for id in authz.later_uri_san_risks() {
            warnings.push(format!(
                "AuthorizationPolicy {id} matches peer identities in a DENY rule or excludes \
                 them in an ALLOW rule: Envoy gives a Wasm filter only the first URI SAN of a \
                 certificate, so one with several URI SANs is judged by its first alone and a \
                 later one can pass (README: later-uri-sans-unseen)"
            ));
        }
        Ok(FilterConfig {
            request_authn: RequestAuthn::new(providers),
            peer_authn: peer.policy,
            authz,
            authz_not_selected: authz_ignored,
            warnings,
            summary,
            remote_jwks,
            token_cache,
            export_identity: raw.export_identity.unwrap_or(false),
        })
    }
}

/// The policy documents with their paths: a YAML list, or one string of YAML documents
/// (a pasted file), each possibly a `kind: List`.
fn policy_documents(policies: Option<Value>) -> Result<Vec<(String, Value)>, ConfigError> {
    let docs: Vec<(String, Value)> = match policies {
        None | Some(Value::Null) => {
            return Err(ConfigError::field(
                "policies",
                "required: a list of Istio resources, or one string holding `---`-separated \
                 YAML documents",
            ))
        }
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("policies[{i}]"), v))
            .collect(),
        Some(Value::String(text)) => {
            yaml::parse_documents(&text, |i| format!("policies (document {i})"))?
        }
        Some(_) => {
            return Err(ConfigError::field(
                "policies",
                "expected a list of resources or a string of YAML documents",
            ))
        }
    };
    let mut flat = Vec::with_capacity(docs.len());
    for (path, doc) in docs {
        let is_list = doc.get("kind").and_then(Value::as_str) == Some("List");
        match (is_list, doc) {
            (true, Value::Object(mut list)) => {
                let items = match list.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => {
                        return Err(ConfigError::field(
                            format!("{path}.items"),
                            "a `kind: List` needs an `items` list",
                        ))
                    }
                };
                flat.extend(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(j, v)| (format!("{path}.items[{j}]"), v)),
                );
            }
            (_, doc) => flat.push((path, doc)),
        }
    }
    Ok(flat)
}

impl Resource {
    /// `metadata.name`, required by the kinds that need one (`why` says what for).
    fn checked_name(&self, path: &str, why: &str) -> Result<(), ConfigError> {
        match self.metadata.name.is_empty() {
            true => Err(ConfigError::field(
                format!("{path}.metadata.name"),
                format!("required: {why}"),
            )),
            false => Ok(()),
        }
    }

    /// Checks `apiVersion` and returns `metadata.namespace`, which every kind requires (it
    /// decides which workloads the policy applies to).
    fn checked_namespace(&self, path: &str) -> Result<String, ConfigError> {
        let api_version = self.api_version.as_deref().unwrap_or_default();
        if !API_VERSIONS.contains(&api_version) {
            return Err(ConfigError::field(
                format!("{path}.apiVersion"),
                format!("`{api_version}` is not one of {}", API_VERSIONS.join(", ")),
            ));
        }
        match &self.metadata.namespace {
            Some(ns) if !ns.is_empty() => Ok(ns.clone()),
            _ => Err(ConfigError::field(
                format!("{path}.metadata.namespace"),
                "required: the namespace decides which workloads the policy applies to",
            )),
        }
    }
}

/// Refuses `targetRef`/`targetRefs` in the spec at `spec_path` (Gateway and waypoint
/// attachment, which one Envoy cannot see).
fn refuse_target_refs(
    target_ref: Option<&Value>,
    target_refs: Option<&Value>,
    spec_path: &str,
) -> Result<(), ConfigError> {
    let field = match (target_ref, target_refs) {
        (None, None) => return Ok(()),
        (Some(_), _) => "targetRef",
        (None, Some(_)) => "targetRefs",
    };
    Err(ConfigError::field(
        format!("{spec_path}.{field}"),
        "attaches the policy to a Gateway, Service or ServiceEntry, which one Envoy cannot \
         see; use `selector.matchLabels` (or no selector) with the plugin's `workload`",
    ))
}

/// Deserializes `value`, naming the failing field by its path below `prefix`.
pub(crate) fn typed<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, ".") => "(top level)".to_owned(),
            (true, _) => inner,
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        ConfigError::field(path, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests;
