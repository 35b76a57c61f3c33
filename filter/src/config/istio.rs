//! Istio's resources as `kubectl get -o yaml` prints them (istio/api
//! `security/v1beta1/request_authentication.proto`, `type/v1beta1/selector.proto`).
//!
//! Field names are Istio's, in camelCase, with the proto's snake_case names as aliases (proto
//! JSON accepts both). `spec` types deny unknown fields, so a typo or a field this version does
//! not know is an error, never a silent no-op. Fields Istio has but this version does not
//! enforce yet are parsed so that [`super::compile`] can refuse them by name.

use std::collections::BTreeMap;

/// Kubernetes labels, or a `matchLabels` selector.
pub type Labels = BTreeMap<String, String>;

use serde::Deserialize;
use serde_json::Value;

/// `metadata`: only `name`, `namespace`, `creationTimestamp` and `annotations` matter; the rest of the k8s
/// envelope (labels, annotations, uid, resourceVersion, managedFields...) is accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `metadata.creationTimestamp` (PeerAuthentication precedence).
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    /// `metadata.annotations` (AuthorizationPolicy's `istio.io/dry-run`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `WorkloadSelector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels a workload must all carry.
    #[serde(default, alias = "match_labels")]
    pub match_labels: Labels,
}

/// `RequestAuthentication.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestAuthenticationSpec {
    /// Workloads in the policy's namespace (all namespaces in the root namespace) it applies to.
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    /// Gateway/waypoint attachment; refused (see compile).
    #[serde(default, alias = "target_ref")]
    pub target_ref: Option<Value>,
    /// Gateway/waypoint attachment; refused (see compile).
    #[serde(default, alias = "target_refs")]
    pub target_refs: Option<Value>,
    /// The rules.
    #[serde(default, alias = "jwt_rules")]
    pub jwt_rules: Vec<JwtRule>,
}

/// `JWTRule`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtRule {
    /// Required `iss`; empty accepts any.
    #[serde(default)]
    pub issuer: String,
    /// Accepted audiences, any-of; empty accepts any.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Remote key set URL.
    #[serde(default, alias = "jwks_uri")]
    pub jwks_uri: String,
    /// Inline key set (JSON text).
    #[serde(default)]
    pub jwks: String,
    /// Token headers.
    #[serde(default, alias = "from_headers")]
    pub from_headers: Vec<JwtHeader>,
    /// Token query parameters.
    #[serde(default, alias = "from_params")]
    pub from_params: Vec<String>,
    /// Token cookies.
    #[serde(default, alias = "from_cookies")]
    pub from_cookies: Vec<String>,
    /// Header to receive the base64url payload.
    #[serde(default, alias = "output_payload_to_header")]
    pub output_payload_to_header: String,
    /// Keep the token in the request after it verifies.
    #[serde(default, alias = "forward_original_token")]
    pub forward_original_token: bool,
    /// Claims copied into headers.
    #[serde(default, alias = "output_claim_to_headers")]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// JWKS fetch timeout (proto Duration text, e.g. `5s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Extra space-delimited claims for authorization.
    #[serde(default, alias = "space_delimited_claims")]
    pub space_delimited_claims: Vec<String>,
    /// `OPTIONAL` (default) or `REQUIRED` (istio/api #3737).
    #[serde(default)]
    pub presence: Option<String>,
}

/// `JWTHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtHeader {
    /// Header name.
    pub name: String,
    /// Text before the token.
    #[serde(default)]
    pub prefix: String,
}

/// `ClaimToHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimToHeader {
    /// Header name.
    pub header: String,
    /// Claim path.
    pub claim: String,
}

/// `PeerAuthentication.spec` (istio/api `security/v1beta1/peer_authentication.proto`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// Workloads in the policy's namespace it applies to; absent or empty: namespace-wide
    /// (mesh-wide in the root namespace).
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    /// The workload-wide mode.
    #[serde(default)]
    pub mtls: Option<MutualTls>,
    /// Per-port modes, keyed by the workload (destination) port as a decimal string (YAML and
    /// proto JSON map keys).
    #[serde(default, alias = "port_level_mtls")]
    pub port_level_mtls: Option<BTreeMap<String, Option<MutualTls>>>,
}

/// `PeerAuthentication.MutualTLS`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MutualTls {
    /// `UNSET`, `DISABLE`, `PERMISSIVE` or `STRICT`; absent: `UNSET`.
    #[serde(default)]
    pub mode: Option<String>,
}
