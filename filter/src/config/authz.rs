//! Compiling an `AuthorizationPolicy` resource (istio/api `security/v1beta1/authorization.proto`)
//! into [`crate::authz::Policy`].
//!
//! What istiod's admission validation refuses (`pkg/config/validation/validation.go`
//! `ValidateAuthorizationPolicy`, `pkg/config/security/security.go`) is a configuration error
//! here, naming the field. What validation lets through but istiod's builder cannot translate
//! (`pilot/pkg/security/authz/model/model.go` `checkError`) follows the builder: an ALLOW rule
//! with such a field is left out (it never matches); in a DENY or AUDIT rule the value is
//! dropped, and a field left without values is dropped (the rule widens). For an HTTP filter
//! that happens only for a `when` key that starts like `request.headers` or
//! `request.auth.claims` but is not followed by `[name]` (e.g. `request.headersX[a]`), which
//! validation's prefix test accepts and the generator's bracket parsing refuses.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::istio::{Labels, WorkloadSelector};
use super::{refuse_target_refs, typed, ConfigError, Resource};
use crate::authz::matcher::{check_path_template, Cidr, HeaderMatch, PathMatch, StringMatch};
use crate::authz::{Action, Condition, Matcher, Policy, Rule};

/// The kind this module compiles.
pub(super) const KIND: &str = "AuthorizationPolicy";

/// istio/api `annotation`: `istio.io/dry-run`.
const DRY_RUN: &str = "istio.io/dry-run";

/// Whether the document is an AuthorizationPolicy.
pub(super) fn is_authorization_policy(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some(KIND)
}

/// `AuthorizationPolicy.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuthorizationPolicySpec {
    #[serde(default)]
    selector: Option<WorkloadSelector>,
    #[serde(default, alias = "target_ref")]
    target_ref: Option<Value>,
    #[serde(default, alias = "target_refs")]
    target_refs: Option<Value>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    provider: Option<Value>,
}

/// `Rule`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    from: Option<Vec<RawFrom>>,
    #[serde(default)]
    to: Option<Vec<RawTo>>,
    #[serde(default)]
    when: Vec<RawCondition>,
}

/// `Rule.From`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrom {
    #[serde(default)]
    source: Option<RawSource>,
}

/// `Source`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSource {
    #[serde(default)]
    principals: Vec<String>,
    #[serde(default, alias = "not_principals")]
    not_principals: Vec<String>,
    #[serde(default, alias = "request_principals")]
    request_principals: Vec<String>,
    #[serde(default, alias = "not_request_principals")]
    not_request_principals: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, alias = "not_namespaces")]
    not_namespaces: Vec<String>,
    #[serde(default, alias = "service_accounts")]
    service_accounts: Vec<String>,
    #[serde(default, alias = "not_service_accounts")]
    not_service_accounts: Vec<String>,
    #[serde(default, alias = "trust_domains")]
    trust_domains: Vec<String>,
    #[serde(default, alias = "not_trust_domains")]
    not_trust_domains: Vec<String>,
    #[serde(default, alias = "ip_blocks")]
    ip_blocks: Vec<String>,
    #[serde(default, alias = "not_ip_blocks")]
    not_ip_blocks: Vec<String>,
    #[serde(default, alias = "remote_ip_blocks")]
    remote_ip_blocks: Vec<String>,
    #[serde(default, alias = "not_remote_ip_blocks")]
    not_remote_ip_blocks: Vec<String>,
}

/// `Rule.To`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTo {
    #[serde(default)]
    operation: Option<RawOperation>,
}

/// `Operation`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawOperation {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default, alias = "not_hosts")]
    not_hosts: Vec<String>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default, alias = "not_ports")]
    not_ports: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default, alias = "not_methods")]
    not_methods: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default, alias = "not_paths")]
    not_paths: Vec<String>,
}

/// `Condition`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCondition {
    #[serde(default)]
    key: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default, alias = "not_values")]
    not_values: Vec<String>,
}

/// One AuthorizationPolicy resource compiled, with its scope.
pub(super) struct AuthzPolicy {
    pub(super) policy: Policy,
    pub(super) selector: Option<Labels>,
}

/// Why `ipBlocks`, `notIpBlocks` and `source.ip` are refused (measured, see the README).
const SOURCE_IP_UNSUPPORTED: &str = "matches the connection's peer address (Envoy RBAC \
    `direct_remote_ip`), which Envoy 1.40 does not give a Wasm filter: its `source.address` is \
    the remote address the connection manager takes from `x-forwarded-for`, which a client can \
    set; use `remoteIpBlocks` (`remote.ip`), which is the peer address when the listener sets \
    `use_remote_address: true`, or Envoy's RBAC filter";

/// The `when` keys (istio/istio `pilot/pkg/security/authz/model/model.go`).
const REQUEST_HEADERS: &str = "request.headers";
const REQUEST_CLAIMS: &str = "request.auth.claims";

impl AuthzPolicy {
    /// Compiles the resource at `path`. `trust_domains`: the plugin's `trustDomain` and
    /// `trustDomainAliases` (empty: none configured).
    pub(super) fn compile(
        doc: Value,
        path: &str,
        trust_domains: &[String],
    ) -> Result<AuthzPolicy, ConfigError> {
        let resource: Resource = typed(doc, path)?;
        let namespace = resource.checked_namespace(path)?;
        resource.checked_name(
            path,
            "it names the policy's rules in counters, logs and denials",
        )?;
        let meta = resource.metadata;
        let dry_run = match meta.annotations.get(DRY_RUN) {
            None => false,
            Some(text) => parse_bool(text).ok_or_else(|| {
                ConfigError::field(
                    format!("{path}.metadata.annotations.{DRY_RUN}"),
                    format!("`{text}` is not a boolean (`true` or `false`)"),
                )
            })?,
        };
        let spec_path = format!("{path}.spec");
        let spec: AuthorizationPolicySpec = typed(
            resource.spec.unwrap_or(Value::Object(Default::default())),
            &spec_path,
        )?;
        refuse_target_refs(
            spec.target_ref.as_ref(),
            spec.target_refs.as_ref(),
            &spec_path,
        )?;
        let action =
            match spec.action.as_deref() {
                None | Some("ALLOW") => Action::Allow,
                Some("DENY") => Action::Deny,
                Some("AUDIT") => Action::Audit,
                Some("CUSTOM") => return Err(ConfigError::field(
                    format!("{spec_path}.action"),
                    "CUSTOM delegates to an external authorizer (ext_authz), which this filter \
                     does not call; configure Envoy's `envoy.filters.http.ext_authz` for it, or \
                     use ALLOW, DENY or AUDIT here",
                )),
                Some(other) => {
                    return Err(ConfigError::field(
                        format!("{spec_path}.action"),
                        format!("`{other}` is not ALLOW, DENY, AUDIT or CUSTOM"),
                    ))
                }
            };
        if spec.provider.is_some() {
            return Err(ConfigError::field(
                format!("{spec_path}.provider"),
                format!("must not be set with action {}", action.as_str()),
            ));
        }
        if action == Action::Deny && spec.rules.is_empty() {
            return Err(ConfigError::field(
                format!("{spec_path}.rules"),
                "DENY action without `rules` is meaningless as it will never be triggered (as \
                 istiod's validation); add an empty rule `{}` to deny every request",
            ));
        }
        let mut ctx = Ctx {
            namespace: &namespace,
            action,
            trust_domains,
            never: false,
        };
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (i, raw) in spec.rules.into_iter().enumerate() {
            let rule_path = format!("{spec_path}.rules[{i}]");
            let id = format!("ns[{namespace}]-policy[{}]-rule[{i}]", meta.name);
            rules.push(ctx.rule(raw, id, &rule_path)?);
        }
        let selector = spec.selector.map(|s| s.match_labels);
        Ok(AuthzPolicy {
            policy: Policy {
                namespace,
                name: meta.name,
                action,
                dry_run,
                rules,
            },
            selector,
        })
    }
}

/// Go's `strconv.ParseBool`, which istiod uses for `istio.io/dry-run`. istiod logs a value it
/// cannot parse and enforces the policy; here it is a configuration error instead.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// What compiling one rule needs.
struct Ctx<'a> {
    namespace: &'a str,
    action: Action,
    trust_domains: &'a [String],
    /// Set when a field of the current rule cannot be translated (see the module doc).
    never: bool,
}

/// A field's values and its `not` values, by their names.
struct Field<'a> {
    name: &'a str,
    not_name: &'a str,
    values: Vec<String>,
    not_values: Vec<String>,
}

impl<'a> Field<'a> {
    fn new(
        name: &'a str,
        not_name: &'a str,
        values: Vec<String>,
        not_values: Vec<String>,
    ) -> Field<'a> {
        Field {
            name,
            not_name,
            values,
            not_values,
        }
    }
}

impl Ctx<'_> {
    fn rule(&mut self, raw: RawRule, id: String, path: &str) -> Result<Rule, ConfigError> {
        self.never = false;
        let mut when = Vec::new();
        for (i, c) in raw.when.into_iter().enumerate() {
            if let Some(cond) = self.condition(c, &format!("{path}.when[{i}]"))? {
                when.push(cond);
            }
        }
        let mut from = Vec::new();
        if let Some(list) = raw.from {
            if list.is_empty() {
                return Err(ConfigError::field(
                    format!("{path}.from"),
                    "must not be empty (leave it out to match any source)",
                ));
            }
            for (i, f) in list.into_iter().enumerate() {
                let at = format!("{path}.from[{i}].source");
                let source = f
                    .source
                    .ok_or_else(|| ConfigError::field(&at, "required"))?;
                from.push(self.source(source, &at)?);
            }
        }
        let mut to = Vec::new();
        if let Some(list) = raw.to {
            if list.is_empty() {
                return Err(ConfigError::field(
                    format!("{path}.to"),
                    "must not be empty (leave it out to match any operation)",
                ));
            }
            for (i, t) in list.into_iter().enumerate() {
                let at = format!("{path}.to[{i}].operation");
                let op = t
                    .operation
                    .ok_or_else(|| ConfigError::field(&at, "required"))?;
                to.push(self.operation(op, &at)?);
            }
        }
        Ok(Rule {
            id,
            never: self.never,
            from,
            to,
            when,
        })
    }

    fn source(&mut self, s: RawSource, at: &str) -> Result<Vec<Condition>, ConfigError> {
        let field = Field::new;
        let identity = s.principals.len()
            + s.not_principals.len()
            + s.namespaces.len()
            + s.not_namespaces.len();
        if identity > 0 && s.service_accounts.len() + s.not_service_accounts.len() > 0 {
            return Err(ConfigError::field(
                format!("{at}.serviceAccounts"),
                "cannot be set with namespaces or principals (as istiod's validation)",
            ));
        }
        // model.go's order (insertFront): principals, requestPrincipals, serviceAccounts,
        // trustDomains, namespaces, remoteIpBlocks, ipBlocks; order does not change a match.
        let fields = [
            (
                Key::Principal,
                field(
                    "principals",
                    "notPrincipals",
                    s.principals,
                    s.not_principals,
                ),
            ),
            (
                Key::RequestPrincipal,
                field(
                    "requestPrincipals",
                    "notRequestPrincipals",
                    s.request_principals,
                    s.not_request_principals,
                ),
            ),
            (
                Key::ServiceAccount,
                field(
                    "serviceAccounts",
                    "notServiceAccounts",
                    s.service_accounts,
                    s.not_service_accounts,
                ),
            ),
            (
                Key::TrustDomain,
                field(
                    "trustDomains",
                    "notTrustDomains",
                    s.trust_domains,
                    s.not_trust_domains,
                ),
            ),
            (
                Key::Namespace,
                field(
                    "namespaces",
                    "notNamespaces",
                    s.namespaces,
                    s.not_namespaces,
                ),
            ),
            (
                Key::RemoteIp,
                field(
                    "remoteIpBlocks",
                    "notRemoteIpBlocks",
                    s.remote_ip_blocks,
                    s.not_remote_ip_blocks,
                ),
            ),
            (
                Key::SourceIp,
                field("ipBlocks", "notIpBlocks", s.ip_blocks, s.not_ip_blocks),
            ),
        ];
        self.fields(fields, at, "`from.source` must not be empty")
    }

    fn operation(&mut self, o: RawOperation, at: &str) -> Result<Vec<Condition>, ConfigError> {
        let field = Field::new;
        let fields = [
            (Key::Host, field("hosts", "notHosts", o.hosts, o.not_hosts)),
            (
                Key::Method,
                field("methods", "notMethods", o.methods, o.not_methods),
            ),
            (Key::Path, field("paths", "notPaths", o.paths, o.not_paths)),
            (Key::Port, field("ports", "notPorts", o.ports, o.not_ports)),
        ];
        self.fields(fields, at, "`to.operation` must not be empty")
    }

    fn fields<const N: usize>(
        &mut self,
        fields: [(Key, Field<'_>); N],
        at: &str,
        empty: &str,
    ) -> Result<Vec<Condition>, ConfigError> {
        if fields
            .iter()
            .all(|(_, f)| f.values.is_empty() && f.not_values.is_empty())
        {
            return Err(ConfigError::field(at, empty));
        }
        let mut conditions = Vec::new();
        for (key, f) in fields {
            if f.values.is_empty() && f.not_values.is_empty() {
                continue;
            }
            let values = self.values(&key, &f.values, &format!("{at}.{}", f.name))?;
            let not_values = self.values(&key, &f.not_values, &format!("{at}.{}", f.not_name))?;
            if let Some(c) = self.finish(values, not_values) {
                conditions.push(c);
            }
        }
        Ok(conditions)
    }

    /// A `when` condition; `None` when istiod's builder drops it from a DENY/AUDIT rule.
    fn condition(&mut self, c: RawCondition, at: &str) -> Result<Option<Condition>, ConfigError> {
        if c.key.is_empty() {
            return Err(ConfigError::field(format!("{at}.key"), "must not be empty"));
        }
        if c.values.is_empty() && c.not_values.is_empty() {
            return Err(ConfigError::field(
                at,
                format!(
                    "at least one of `values` or `notValues` must be set for key {}",
                    c.key
                ),
            ));
        }
        let key = when_key(&c.key).map_err(|e| ConfigError::field(format!("{at}.key"), e))?;
        let values = self.values(&key, &c.values, &format!("{at}.values"))?;
        let not_values = self.values(&key, &c.not_values, &format!("{at}.notValues"))?;
        Ok(self.finish(values, not_values))
    }

    /// The condition from the translated values (`None` for a value istiod cannot translate).
    /// For ALLOW one untranslatable value leaves the rule out; for DENY and AUDIT the value is
    /// dropped, and with no value left on either side the field is dropped (`model.go`).
    fn finish(
        &mut self,
        values: Vec<Option<Matcher>>,
        not_values: Vec<Option<Matcher>>,
    ) -> Option<Condition> {
        let untranslatable = values.iter().chain(&not_values).any(Option::is_none);
        if untranslatable && self.action == Action::Allow {
            self.never = true;
        }
        let values: Vec<Matcher> = values.into_iter().flatten().collect();
        let not_values: Vec<Matcher> = not_values.into_iter().flatten().collect();
        if values.is_empty() && not_values.is_empty() {
            return None;
        }
        Some(Condition { values, not_values })
    }

    /// Validates and translates every value of one field.
    fn values(
        &self,
        key: &Key,
        values: &[String],
        at: &str,
    ) -> Result<Vec<Option<Matcher>>, ConfigError> {
        if *key == Key::SourceIp && !values.is_empty() {
            return Err(ConfigError::field(at, SOURCE_IP_UNSUPPORTED));
        }
        if let Some(i) = values.iter().position(String::is_empty) {
            return Err(ConfigError::field(
                format!("{at}[{i}]"),
                "must not be empty",
            ));
        }
        let values = match key {
            Key::Principal => replace_trust_domain_aliases(values, self.trust_domains),
            Key::TrustDomain => expand_trust_domain_aliases(values, self.trust_domains),
            _ => values.to_vec(),
        };
        let mut out = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let at = format!("{at}[{i}]");
            out.push(
                self.value(key, value)
                    .map_err(|e| ConfigError::field(at, e))?,
            );
        }
        Ok(out)
    }

    /// One value's matcher; `Ok(None)`: valid for istiod's validation, but its builder cannot
    /// translate it.
    fn value(&self, key: &Key, v: &str) -> Result<Option<Matcher>, String> {
        let cidr = |v: &str| Cidr::parse(v);
        Ok(Some(match key {
            Key::Principal => Matcher::PeerUri(StringMatch::with_prefix(v, "spiffe://")),
            Key::Namespace => {
                let mut pieces: Vec<String> = v.split('*').map(str::to_owned).collect();
                if let Some(first) = pieces.first_mut() {
                    first.insert_str(0, "/ns/");
                }
                if let Some(last) = pieces.last_mut() {
                    last.push('/');
                }
                pieces.insert(0, String::new());
                pieces.push(String::new());
                Matcher::PeerNamespace(pieces)
            }
            Key::ServiceAccount => {
                // security.CheckServiceAccount.
                if v.contains('*') {
                    return Err("wildcard not allowed".into());
                }
                if v.len() > 320 {
                    return Err("value cannot exceed 320 characters".into());
                }
                let (namespace, name) = match v.split_once('/') {
                    None => (self.namespace, v),
                    Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains('/') => {
                        (ns, sa)
                    }
                    Some(_) => {
                        return Err(
                            "expected format 'serviceAccount' or 'namespace/serviceAccount'".into(),
                        )
                    }
                };
                Matcher::PeerServiceAccount {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                }
            }
            Key::TrustDomain => {
                // security.CheckTrustDomainValues (CheckWildcardValues for the `when` key).
                let stars = v.matches('*').count();
                if stars > 1 {
                    return Err("at most one wildcard is allowed".into());
                }
                if stars == 1 && v != "*" && !v.starts_with('*') && !v.ends_with('*') {
                    return Err("wildcard is only allowed at the start or end".into());
                }
                if v.contains('/') {
                    return Err("trust domain must not contain '/'".into());
                }
                Matcher::PeerTrustDomain(match v.split_once('*') {
                    _ if v == "*" => None,
                    None => Some(StringMatch::Exact(v.to_owned())),
                    Some((pre, suf)) => {
                        Some(StringMatch::PrefixSuffix(pre.to_owned(), suf.to_owned()))
                    }
                })
            }
            Key::SourceIp => return Err(SOURCE_IP_UNSUPPORTED.into()),
            Key::RemoteIp => Matcher::RemoteIp(cidr(v)?),
            Key::DestinationIp => Matcher::DestinationIp(cidr(v)?),
            Key::Port => Matcher::DestinationPort(
                v.parse::<u32>()
                    .ok()
                    .filter(|p| *p <= 65535)
                    .ok_or_else(|| format!("bad port `{v}`: a number from 0 to 65535"))?,
            ),
            Key::Sni => Matcher::Sni(StringMatch::new(v)),
            Key::Host => Matcher::Header(":authority".into(), HeaderMatch::host(v)),
            Key::Method => Matcher::Header(":method".into(), HeaderMatch::new(v)),
            Key::Path => {
                check_path_template(v)?;
                Matcher::Path(PathMatch::new(v))
            }
            Key::Header(None) | Key::Claims(None) => return Ok(None),
            Key::Header(Some(name)) => Matcher::Header(name.clone(), HeaderMatch::new(v)),
            Key::Claims(Some(path)) => Matcher::Claim(path.clone(), StringMatch::new(v)),
            Key::Audiences => Matcher::Claim(vec!["aud".into()], StringMatch::new(v)),
            Key::Presenter => Matcher::Claim(vec!["azp".into()], StringMatch::new(v)),
            Key::RequestPrincipal => request_principal(v),
        }))
    }
}

/// What a field or `when` key reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Principal,
    RequestPrincipal,
    Namespace,
    ServiceAccount,
    TrustDomain,
    SourceIp,
    RemoteIp,
    DestinationIp,
    Port,
    Sni,
    Host,
    Method,
    Path,
    /// `request.headers[<name>]`, the name lower-cased; `None`: not `[name]` after the prefix.
    Header(Option<String>),
    /// `request.auth.claims[a][b]…`; `None`: not brackets after the prefix.
    Claims(Option<Vec<String>>),
    Audiences,
    Presenter,
}

/// A `when` key as istiod validates it (`security.ValidateAttribute`) and translates it
/// (`model.New`); an unknown key is an error.
fn when_key(key: &str) -> Result<Key, String> {
    if key.starts_with(REQUEST_HEADERS) {
        validate_map_key(key)?;
        let name = key
            .get(REQUEST_HEADERS.len()..)
            .and_then(extract_name_in_brackets)
            .map(|n| n.to_ascii_lowercase());
        return Ok(Key::Header(name));
    }
    if key.starts_with(REQUEST_CLAIMS) {
        validate_map_key(key)?;
        let path = key
            .get(REQUEST_CLAIMS.len()..)
            .and_then(extract_name_in_nested_brackets);
        return Ok(Key::Claims(path));
    }
    if key.starts_with("experimental.envoy.filters.") {
        return Err(format!(
            "`{key}` reads another Envoy filter's metadata, which this filter cannot see; \
             use an Envoy RBAC filter for it"
        ));
    }
    Ok(match key {
        "source.ip" => Key::SourceIp,
        "remote.ip" => Key::RemoteIp,
        "source.namespace" => Key::Namespace,
        "source.serviceAccount" => Key::ServiceAccount,
        "source.trustDomain" => Key::TrustDomain,
        "source.principal" => Key::Principal,
        "request.auth.principal" => Key::RequestPrincipal,
        "request.auth.audiences" => Key::Audiences,
        "request.auth.presenter" => Key::Presenter,
        "destination.ip" => Key::DestinationIp,
        "destination.port" => Key::Port,
        "connection.sni" => Key::Sni,
        "destination.namespace" => {
            return Err(format!(
                "attribute {key} is replaced by the metadata.namespace"
            ))
        }
        k if k.starts_with("destination.labels") => {
            return Err(format!(
                "attribute {key} is replaced by the workload selector"
            ))
        }
        "destination.name" | "destination.user" => {
            return Err(format!(
                "deprecated attribute {key}: only supported in v1alpha1"
            ))
        }
        _ => {
            return Err(format!(
                "unknown attribute `{key}`; known: request.headers[<name>], source.ip, \
                 remote.ip, source.namespace, source.serviceAccount, source.trustDomain, \
                 source.principal, request.auth.principal, request.auth.audiences, \
                 request.auth.presenter, request.auth.claims[<name>]…, destination.ip, \
                 destination.port, connection.sni"
            ))
        }
    })
}

/// `validateMapKey`: `a[b]` with a non-empty `b`.
fn validate_map_key(key: &str) -> Result<(), String> {
    match key.find('[') {
        Some(open) if key.ends_with(']') && open > 0 && open + 2 < key.len() => Ok(()),
        _ => Err(format!("bad key `{key}`: should have format a[b]")),
    }
}

/// `extractNameInBrackets`: `[name]` ⇒ `name`.
fn extract_name_in_brackets(s: &str) -> Option<String> {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .map(str::to_owned)
}

/// `extractNameInNestedBrackets`: `[a][b]` ⇒ `[a, b]`; a string that is not a run of
/// `[…]` without nested `[` is read as one `[name]`.
fn extract_name_in_nested_brackets(s: &str) -> Option<Vec<String>> {
    let bytes = s.as_bytes();
    let find_end = |begin: usize| -> Option<usize> {
        if bytes.get(begin) != Some(&b'[') {
            return None;
        }
        for (i, &b) in bytes.iter().enumerate().skip(begin + 1) {
            match b {
                b'[' => return None,
                b']' => return Some(i),
                _ => {}
            }
        }
        None
    };
    let mut claims = Vec::new();
    let mut begin = 0;
    while begin < s.len() {
        match find_end(begin) {
            Some(end) => {
                claims.push(s.get(begin + 1..end)?.to_owned());
                begin = end + 1;
            }
            None => return extract_name_in_brackets(s).map(|n| vec![n]),
        }
    }
    Some(claims)
}

/// `requestPrincipalGenerator.extendedPrincipal` for one value: split at the last `/` into
/// issuer and subject, each matched on its claim.
fn request_principal(value: &str) -> Matcher {
    let (iss, sub, found) = match value.rsplit_once('/') {
        Some((iss, sub)) => (iss, sub, true),
        None => (value, "", false),
    };
    let exact = |s: &str| StringMatch::Exact(s.to_owned());
    let (iss, sub) = if value == "*" {
        (StringMatch::NonEmpty, StringMatch::NonEmpty)
    } else if value.starts_with('*') {
        if found {
            let iss = if iss == "*" {
                StringMatch::NonEmpty
            } else {
                StringMatch::Suffix(iss.trim_start_matches_once('*').to_owned())
            };
            (iss, exact(sub))
        } else {
            (
                StringMatch::NonEmpty,
                StringMatch::Suffix(value.trim_start_matches_once('*').to_owned()),
            )
        }
    } else if value.ends_with('*') {
        if found {
            let sub = if sub == "*" {
                StringMatch::NonEmpty
            } else {
                StringMatch::Prefix(sub.trim_end_matches_once('*').to_owned())
            };
            (exact(iss), sub)
        } else {
            (
                StringMatch::Prefix(value.trim_end_matches_once('*').to_owned()),
                StringMatch::NonEmpty,
            )
        }
    } else {
        (exact(iss), exact(sub))
    };
    Matcher::RequestPrincipal { iss, sub }
}

/// Go's `strings.TrimPrefix` / `TrimSuffix` for one character.
trait TrimOnce {
    fn trim_start_matches_once(&self, c: char) -> &str;
    fn trim_end_matches_once(&self, c: char) -> &str;
}

impl TrimOnce for str {
    fn trim_start_matches_once(&self, c: char) -> &str {
        self.strip_prefix(c).unwrap_or(self)
    }
    fn trim_end_matches_once(&self, c: char) -> &str {
        self.strip_suffix(c).unwrap_or(self)
    }
}

/// istiod's `trustdomain.Bundle.ReplaceTrustDomainAliases` (`pilot/pkg/security/trustdomain/
/// bundle.go`): a principal `<td>/ns/<ns>/sa/<sa>` whose trust domain is the mesh's, an alias,
/// or `cluster.local` stands for itself in every trust domain of the bundle. No trust domain
/// configured: the principals as written (istiod's bundle is then `cluster.local` alone, which
/// changes nothing).
fn replace_trust_domain_aliases(principals: &[String], bundle: &[String]) -> Vec<String> {
    if bundle.is_empty() {
        return principals.to_vec();
    }
    let mut out = Vec::with_capacity(principals.len());
    for principal in principals {
        let parts: Vec<&str> = principal.split('/').collect();
        let td = match parts.as_slice() {
            [td, _, _, _, _] if *td != "*" => *td,
            _ => {
                out.push(principal.clone());
                continue;
            }
        };
        if !(string_match(td, bundle) || td == "cluster.local") {
            out.push(principal.clone());
            continue;
        }
        let rest = parts.get(1..).unwrap_or_default().join("/");
        let mut replaced: Vec<String> = Vec::new();
        for b in bundle {
            let p = if suffix_match(b, td) {
                principal.clone()
            } else {
                format!("{b}/{rest}")
            };
            if !replaced.contains(&p) {
                replaced.push(p);
            }
        }
        out.extend(replaced);
    }
    out
}

/// `Bundle.ExpandTrustDomainAliases`: a value that is one of the bundle's trust domains stands
/// for all of them; duplicates removed.
fn expand_trust_domain_aliases(values: &[String], bundle: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let add: &[String] = if bundle.contains(v) {
            bundle
        } else {
            std::slice::from_ref(v)
        };
        for a in add {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
    out
}

/// `trustdomain.stringMatch`: the pattern may be on either side.
fn string_match(a: &str, list: &[String]) -> bool {
    list.iter().any(|s| {
        a == s
            || s == "*"
            || prefix_match(a, s)
            || prefix_match(s, a)
            || suffix_match(a, s)
            || suffix_match(s, a)
    })
}

fn prefix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_suffix('*').is_some_and(|p| a.starts_with(p))
}

fn suffix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_prefix('*').is_some_and(|p| a.ends_with(p))
}

/// Refuses two AuthorizationPolicies with one namespace and name (Kubernetes keeps one).
pub(super) fn check_unique(policies: &[(String, AuthzPolicy)]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (path, p) in policies {
        let key = (p.policy.namespace.as_str(), p.policy.name.as_str());
        if let Some(first) = seen.insert(key, path) {
            return Err(ConfigError::field(
                format!("{path}.metadata.name"),
                format!(
                    "AuthorizationPolicy {}/{} appears twice (also at {first}); Kubernetes \
                     would keep one",
                    key.0, key.1
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
