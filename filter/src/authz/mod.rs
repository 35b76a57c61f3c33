//! AuthorizationPolicy over one request, as istiod configures Envoy's RBAC filters and Envoy
//! evaluates them (istio/istio `pilot/pkg/security/authz/builder/builder.go`,
//! `model/model.go`, `model/generator.go`; envoyproxy/envoy
//! `source/extensions/filters/http/rbac/rbac_filter.cc`, `filters/common/rbac/engine_impl.cc`).
//!
//! - istiod emits one RBAC filter per action, in the order AUDIT (Envoy `LOG`), DENY, ALLOW;
//!   each holds the enforced policies as `rules` and the dry-run ones as `shadow_rules`.
//! - Every rule of a policy is one RBAC policy named `ns[<namespace>]-policy[<name>]-rule[<i>]`;
//!   Envoy keeps them in a sorted map, so the first match in name order is the one reported.
//! - A DENY match denies; otherwise, if any enforced ALLOW policy applies, a request no ALLOW
//!   rule matches is denied (`none`); with no ALLOW policy, allowed. A policy with no rules
//!   never matches (`rbacPolicyMatchNever`): `spec: {}` (ALLOW) denies everything.
//! - A rule: `from` entries OR'ed, `to` entries OR'ed, `when` conditions AND'ed, and all three
//!   AND'ed; inside a source or operation every field AND'ed; inside a field the values OR'ed,
//!   and `notValues` excluded ([`Condition`]).
//!
//! Pure: the adapter gives the request's [`Attributes`]; nothing here talks to the host.

pub mod matcher;

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::request::Request;
use matcher::{Cidr, HeaderMatch, PathMatch, StringMatch};

/// The AuthorizationPolicy actions this filter enforces (`CUSTOM` is refused at configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `ALLOW` (the default).
    Allow,
    /// `DENY`.
    Deny,
    /// `AUDIT`: Envoy RBAC `LOG`; changes no decision.
    Audit,
}

impl Action {
    /// The action as Istio spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
        }
    }
}

/// One AuthorizationPolicy that applies to the workload, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.action`.
    pub action: Action,
    /// `istio.io/dry-run: "true"`: evaluated and counted, never enforced.
    pub dry_run: bool,
    /// The rules; none: the policy never matches.
    pub rules: Vec<Rule>,
}

/// One rule: Envoy RBAC's policy of `permissions` (`to`, and the `when` keys istiod files under
/// permissions) and `principals` (`from`, and the other `when` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `ns[<namespace>]-policy[<name>]-rule[<index>]`, Istio's RBAC policy name.
    pub id: String,
    /// istiod could not translate a field of this ALLOW rule, so it left the rule out: it never
    /// matches (`builder.go`: "skipped rule").
    pub never: bool,
    /// `from`: OR of sources, each an AND of conditions; empty: any source.
    pub from: Vec<Vec<Condition>>,
    /// `to`: OR of operations, each an AND of conditions; empty: any operation.
    pub to: Vec<Vec<Condition>>,
    /// `when`: AND of conditions.
    pub when: Vec<Condition>,
}

/// One field of a source or operation, or one `when` key: matches when some value matches (or
/// there are no values) and no `notValue` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The values, OR'ed.
    pub values: Vec<Matcher>,
    /// The `not` values, OR'ed and negated.
    pub not_values: Vec<Matcher>,
}

/// What one value matches, and against which attribute (istiod's generator for the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `principals`, `source.principal`: Envoy `authenticated` on the peer certificate's
    /// identities ([`PeerIdentities`]), with `spiffe://` in front of the value.
    PeerUri(StringMatch),
    /// `namespaces`, `source.namespace`: the regex `.*/ns/<ns>/.*` on the peer's identities
    /// (a `*` in the value is `.*`); here the literal pieces between the `*`s of that glob.
    PeerNamespace(Vec<String>),
    /// `serviceAccounts`, `source.serviceAccount`: the regex
    /// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` on the peer's identities
    /// (`serviceAccountRegex`).
    PeerServiceAccount {
        /// The namespace (the policy's when the value has none).
        namespace: String,
        /// The service account.
        name: String,
    },
    /// `trustDomains`, `source.trustDomain` (`srcTrustDomainGenerator`): `None` is `*` (any
    /// `spiffe://` identity); otherwise matched against the trust domain of a `spiffe://<td>/…`
    /// identity.
    PeerTrustDomain(Option<StringMatch>),
    /// `remoteIpBlocks`, `remote.ip`: Envoy `remote_ip`.
    RemoteIp(Cidr),
    /// `destination.ip`: Envoy `destination_ip`.
    DestinationIp(Cidr),
    /// `ports`, `destination.port`.
    DestinationPort(u32),
    /// `connection.sni`: Envoy `requested_server_name`.
    Sni(StringMatch),
    /// `hosts` (`:authority`, case-insensitive), `methods` (`:method`),
    /// `request.headers[<name>]`: a header by its lower-case name.
    Header(String, HeaderMatch),
    /// `paths`.
    Path(PathMatch),
    /// `requestPrincipals`, `request.auth.principal`: the token's `iss` and `sub` claims
    /// (`requestPrincipalGenerator`: the value split at its last `/`).
    RequestPrincipal {
        /// Matcher of `iss`.
        iss: StringMatch,
        /// Matcher of `sub`.
        sub: StringMatch,
    },
    /// `request.auth.claims[a][b]…`, `request.auth.audiences` (`aud`),
    /// `request.auth.presenter` (`azp`): a claim by its path; a string matches, a list
    /// matches when one of its strings does.
    Claim(Vec<String>, StringMatch),
}

/// The verified token authorization reads: the last one that verified, as Envoy `jwt_authn`'s
/// `payload_in_metadata` keeps it (each verified token overwrites the same key, `payload`).
#[derive(Debug, Clone, Copy)]
pub struct TokenClaims<'a> {
    /// The payload.
    pub payload: &'a Map<String, Value>,
    /// The rule's space-delimited claims (`scope`, `permission` and `spaceDelimitedClaims`):
    /// a string in such a top-level claim is matched as the list of its space-separated words.
    pub space_delimited: &'a [String],
}

/// What a request offers to the matchers. The adapter fills in only what [`Needs`] asks for;
/// anything else is `None` (absent: matches no value).
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The request headers as the upstream will see them (after RequestAuthentication's
    /// changes: removed tokens, output headers), as Envoy's RBAC filter sees them after
    /// `jwt_authn`.
    pub headers: &'a Request,
    /// The validated peer certificate's identities (all `None` without one).
    pub peer: PeerIdentities<'a>,
    /// The client address Envoy settled on (Envoy `remote_ip`, Wasm `source.address`: from
    /// `x-forwarded-for` as the connection manager is configured).
    pub remote_ip: Option<IpAddr>,
    /// The address the connection came to.
    pub destination_ip: Option<IpAddr>,
    /// The port the connection came to.
    pub destination_port: Option<u32>,
    /// The TLS SNI.
    pub sni: Option<&'a str>,
    /// The verified token, if one verified.
    pub token: Option<TokenClaims<'a>>,
}

/// What Envoy RBAC's `authenticated` principal matches (istiod's generators for every peer
/// field use it): any URI SAN of the validated peer certificate, any DNS SAN, and the subject
/// (Envoy `AuthenticatedMatcher`). A Wasm filter is given the first URI SAN
/// (`connection.uri_san_peer_certificate`), the first DNS SAN and the subject only, so a peer
/// matches when one of these does; later SANs are not seen (README, AuthorizationPolicy).
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerIdentities<'a> {
    /// The first URI SAN.
    pub uri_san: Option<&'a str>,
    /// The first DNS SAN.
    pub dns_san: Option<&'a str>,
    /// The subject (RFC 2253); an empty one is `None`.
    pub subject: Option<&'a str>,
}

impl<'a> PeerIdentities<'a> {
    /// Whether one of the identities satisfies `f`.
    fn any(&self, f: impl Fn(&str) -> bool) -> bool {
        [self.uri_san, self.dns_san, self.subject]
            .into_iter()
            .flatten()
            .any(f)
    }
}

/// Which connection properties some applicable policy reads; the adapter reads only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The peer certificate's identities.
    pub peer: bool,
    /// `remote_ip`.
    pub remote_ip: bool,
    /// `destination_ip`.
    pub destination_ip: bool,
    /// `destination_port`.
    pub destination_port: bool,
    /// SNI.
    pub sni: bool,
}

/// The compiled AuthorizationPolicies that apply to the workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authz {
    policies: Vec<Policy>,
    /// Per action, the enforced and the dry-run rules in Envoy's order (by name), as
    /// `(policy index, rule index)`.
    engines: [Engine; 3],
    needs: Needs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Engine {
    /// Whether some enforced policy has this action (Envoy builds the RBAC `rules` then).
    has_enforced: bool,
    /// Whether some dry-run policy has this action (`shadow_rules`).
    has_shadow: bool,
    enforced: Vec<(usize, usize)>,
    shadow: Vec<(usize, usize)>,
}

/// Which rule decided, by policy and rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// Index into [`Authz::policies`].
    pub policy_index: usize,
    /// The rule's Istio name (`ns[…]-policy[…]-rule[…]`).
    pub rule_id: &'a str,
}

/// The verdict of one engine (an action's enforced or dry-run rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineResult<'a> {
    /// No policy of this kind applies.
    NotApplicable,
    /// This rule matched.
    Matched(Matched<'a>),
    /// Policies apply and no rule matched.
    NoMatch,
}

impl<'a> EngineResult<'a> {
    /// The rule that matched, if one did.
    pub fn matched(self) -> Option<Matched<'a>> {
        match self {
            EngineResult::Matched(m) => Some(m),
            _ => None,
        }
    }
}

/// The decision on one request, and what AUDIT and dry-run policies said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<'a> {
    /// `None`: allowed. `Some(Some(rule))`: this DENY rule matched; `Some(None)`: ALLOW
    /// policies apply and none matched (Envoy reports the policy `none`).
    pub denied: Option<Option<Matched<'a>>>,
    /// The ALLOW rule that let the request through, if an ALLOW engine decided.
    pub allowed_by: Option<Matched<'a>>,
    /// The AUDIT rule that matched.
    pub audited_by: Option<Matched<'a>>,
    /// Dry-run DENY policies: what they would have done.
    pub shadow_deny: EngineResult<'a>,
    /// Dry-run ALLOW policies: what they would have done.
    pub shadow_allow: EngineResult<'a>,
    /// Dry-run AUDIT policies.
    pub shadow_audit: EngineResult<'a>,
}

impl Outcome<'_> {
    /// Envoy RBAC's `%RESPONSE_CODE_DETAILS%` of the denial, `None` when allowed:
    /// `rbac_access_denied_matched_policy[<rule>]`, `[none]` when no ALLOW rule matched
    /// (`filters/common/rbac/utility.cc#responseDetail`; Istio's names have no spaces).
    pub fn response_code_details(&self) -> Option<String> {
        let denied = self.denied?;
        let id = denied.as_ref().map_or("none", |m| m.rule_id);
        Some(format!("rbac_access_denied_matched_policy[{id}]"))
    }
}

const ALLOW: usize = 0;
const DENY: usize = 1;
const AUDIT: usize = 2;

fn engine_index(action: Action) -> usize {
    match action {
        Action::Allow => ALLOW,
        Action::Deny => DENY,
        Action::Audit => AUDIT,
    }
}

impl Authz {
    /// From the policies that apply to the workload.
    pub fn new(policies: Vec<Policy>) -> Authz {
        let mut engines: [Engine; 3] = Default::default();
        let mut needs = Needs::default();
        for (p, policy) in policies.iter().enumerate() {
            let Some(engine) = engines.get_mut(engine_index(policy.action)) else {
                continue;
            };
            let list = if policy.dry_run {
                engine.has_shadow = true;
                &mut engine.shadow
            } else {
                engine.has_enforced = true;
                &mut engine.enforced
            };
            for (r, rule) in policy.rules.iter().enumerate() {
                list.push((p, r));
                for c in rule.conditions() {
                    for m in c.values.iter().chain(&c.not_values) {
                        m.add_needs(&mut needs);
                    }
                }
            }
        }
        for engine in &mut engines {
            for list in [&mut engine.enforced, &mut engine.shadow] {
                list.sort_by(|a, b| rule_id(&policies, *a).cmp(rule_id(&policies, *b)));
            }
        }
        Authz {
            policies,
            engines,
            needs,
        }
    }

    /// The policies, in configuration order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Whether any policy applies (otherwise there is nothing to evaluate).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Which connection properties the policies read.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// The enforced policies that can let a request through because a Wasm filter sees only
    /// the first URI SAN of a peer certificate (README, deviation `later-uri-sans-unseen`): a
    /// DENY rule that matches peer identities, or an ALLOW rule that excludes some
    /// (`notPrincipals`, `notNamespaces`, …). As `namespace/name`.
    pub fn later_uri_san_risks(&self) -> Vec<String> {
        let reads_peer = |ms: &[Matcher]| ms.iter().any(Matcher::reads_peer);
        self.policies
            .iter()
            .filter(|p| !p.dry_run)
            .filter(|p| {
                p.rules.iter().any(|r| {
                    r.conditions().any(|c| match p.action {
                        Action::Deny => reads_peer(&c.values),
                        Action::Allow => reads_peer(&c.not_values),
                        Action::Audit => false,
                    })
                })
            })
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect()
    }

    /// Decides the request: AUDIT, then DENY, then ALLOW, as istiod orders the RBAC filters;
    /// each filter evaluates its dry-run rules before its enforced ones, and a denial stops the
    /// chain (so later filters' dry-run rules are not evaluated either).
    pub fn evaluate<'s>(&'s self, attrs: &Attributes<'_>) -> Outcome<'s> {
        let mut out = Outcome {
            denied: None,
            allowed_by: None,
            audited_by: None,
            shadow_deny: EngineResult::NotApplicable,
            shadow_allow: EngineResult::NotApplicable,
            shadow_audit: EngineResult::NotApplicable,
        };
        out.shadow_audit = self.run(AUDIT, true, attrs);
        out.audited_by = self.run(AUDIT, false, attrs).matched();
        out.shadow_deny = self.run(DENY, true, attrs);
        if let EngineResult::Matched(m) = self.run(DENY, false, attrs) {
            out.denied = Some(Some(m));
            return out;
        }
        out.shadow_allow = self.run(ALLOW, true, attrs);
        match self.run(ALLOW, false, attrs) {
            EngineResult::NotApplicable => {}
            EngineResult::Matched(m) => out.allowed_by = Some(m),
            EngineResult::NoMatch => out.denied = Some(None),
        }
        out
    }

    fn run<'s>(&'s self, engine: usize, shadow: bool, attrs: &Attributes<'_>) -> EngineResult<'s> {
        let Some(engine) = self.engines.get(engine) else {
            return EngineResult::NotApplicable;
        };
        let (applies, list) = if shadow {
            (engine.has_shadow, &engine.shadow)
        } else {
            (engine.has_enforced, &engine.enforced)
        };
        if !applies {
            return EngineResult::NotApplicable;
        }
        for &(p, r) in list {
            let Some(policy) = self.policies.get(p) else {
                continue;
            };
            let Some(rule) = policy.rules.get(r) else {
                continue;
            };
            if rule.matches(attrs) {
                return EngineResult::Matched(Matched {
                    policy,
                    policy_index: p,
                    rule_id: &rule.id,
                });
            }
        }
        EngineResult::NoMatch
    }
}

fn rule_id(policies: &[Policy], (p, r): (usize, usize)) -> &str {
    policies
        .get(p)
        .and_then(|policy| policy.rules.get(r))
        .map_or("", |rule| rule.id.as_str())
}

impl Rule {
    /// Whether the rule matches the request.
    pub fn matches(&self, attrs: &Attributes<'_>) -> bool {
        let all = |conds: &[Condition]| conds.iter().all(|c| c.matches(attrs));
        !self.never
            && (self.from.is_empty() || self.from.iter().any(|c| all(c)))
            && (self.to.is_empty() || self.to.iter().any(|c| all(c)))
            && all(&self.when)
    }

    fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.from
            .iter()
            .flatten()
            .chain(self.to.iter().flatten())
            .chain(&self.when)
    }
}

impl Condition {
    /// Some value matches (or none is given), and no `notValue` matches.
    pub fn matches(&self, attrs: &Attributes<'_>) -> bool {
        (self.values.is_empty() || self.values.iter().any(|m| m.matches(attrs)))
            && !self.not_values.iter().any(|m| m.matches(attrs))
    }
}

impl Matcher {
    /// Whether it matches the peer certificate's identities.
    fn reads_peer(&self) -> bool {
        matches!(
            self,
            Matcher::PeerUri(_)
                | Matcher::PeerNamespace(_)
                | Matcher::PeerServiceAccount { .. }
                | Matcher::PeerTrustDomain(_)
        )
    }

    fn add_needs(&self, needs: &mut Needs) {
        match self {
            Matcher::PeerUri(_)
            | Matcher::PeerNamespace(_)
            | Matcher::PeerServiceAccount { .. }
            | Matcher::PeerTrustDomain(_) => needs.peer = true,
            Matcher::RemoteIp(_) => needs.remote_ip = true,
            Matcher::DestinationIp(_) => needs.destination_ip = true,
            Matcher::DestinationPort(_) => needs.destination_port = true,
            Matcher::Sni(_) => needs.sni = true,
            Matcher::Header(..)
            | Matcher::Path(_)
            | Matcher::RequestPrincipal { .. }
            | Matcher::Claim(..) => {}
        }
    }

    /// Whether this value matches the request.
    pub fn matches(&self, attrs: &Attributes<'_>) -> bool {
        match self {
            Matcher::PeerUri(m) => attrs.peer.any(|id| m.matches(id)),
            Matcher::PeerNamespace(pieces) => attrs.peer.any(|id| glob_matches(pieces, id)),
            Matcher::PeerServiceAccount { namespace, name } => attrs
                .peer
                .any(|id| service_account_matches(id, namespace, name)),
            Matcher::PeerTrustDomain(m) => attrs.peer.any(|id| {
                id.strip_prefix("spiffe://").is_some_and(|rest| match m {
                    None => true,
                    Some(m) => rest.split_once('/').is_some_and(|(td, _)| m.matches(td)),
                })
            }),
            Matcher::RemoteIp(c) => attrs.remote_ip.is_some_and(|ip| c.contains(ip)),
            Matcher::DestinationIp(c) => attrs.destination_ip.is_some_and(|ip| c.contains(ip)),
            Matcher::DestinationPort(p) => attrs.destination_port == Some(*p),
            Matcher::Sni(m) => attrs.sni.is_some_and(|sni| m.matches(sni)),
            Matcher::Header(name, m) => m.matches(attrs.headers.values(name)),
            Matcher::Path(m) => attrs
                .headers
                .first(":path")
                .is_some_and(|path| m.matches(path)),
            Matcher::RequestPrincipal { iss, sub } => attrs.token.is_some_and(|t| {
                let claim = |name: &str| t.payload.get(name).and_then(Value::as_str);
                claim("iss").is_some_and(|v| iss.matches(v))
                    && claim("sub").is_some_and(|v| sub.matches(v))
            }),
            Matcher::Claim(path, m) => attrs.token.is_some_and(|t| claim_matches(t, path, m)),
        }
    }
}

/// Envoy's metadata matcher over the payload (`MetadataListValueMatcher` with
/// `useExtendedJwt`): the path's keys walk nested objects; a string matches itself, a list
/// matches when one of its strings does. A top-level space-delimited claim holding a string is
/// the list of its non-empty space-separated words (Envoy `jwt_authn` `setPayloadMetadata`;
/// a string of only spaces stays a string).
fn claim_matches(token: TokenClaims<'_>, path: &[String], m: &StringMatch) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(mut value) = token.payload.get(first) else {
        return false;
    };
    if rest.is_empty() && token.space_delimited.iter().any(|c| c == first) {
        if let Some(s) = value.as_str() {
            let mut words = s.split(' ').filter(|w| !w.is_empty()).peekable();
            if words.peek().is_some() {
                return words.any(|w| m.matches(w));
            }
        }
    }
    for key in rest {
        match value.get(key.as_str()) {
            Some(v) if value.is_object() => value = v,
            _ => return false,
        }
    }
    match value {
        Value::String(s) => m.matches(s),
        Value::Array(items) => items
            .iter()
            .any(|v| v.as_str().is_some_and(|s| m.matches(s))),
        _ => false,
    }
}

/// The IP of an Envoy address property (`source.address`, `destination.address`: `ip:port`,
/// `[ipv6]:port`, or a bare IP); `None` for anything else (a pipe, an internal address).
pub fn socket_ip(bytes: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| s.parse::<IpAddr>())
        .ok()
}

/// A full match of `s` against literal pieces joined by `.*` (the first piece anchored at the
/// start, the last at the end).
fn glob_matches(pieces: &[String], s: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return s.is_empty();
    };
    let Some(mut tail) = s.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for piece in middle {
        match tail.find(piece.as_str()) {
            Some(at) => tail = tail.get(at + piece.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last.as_str())
}

/// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`, a full match (istiod's `serviceAccountRegex`).
fn service_account_matches(san: &str, namespace: &str, name: &str) -> bool {
    let Some(rest) = san.strip_prefix("spiffe://") else {
        return false;
    };
    let ns = format!("/ns/{namespace}/");
    let sa = format!("sa/{name}");
    // `(/.+)?` at the end.
    let tail_ok = |t: &str| t.is_empty() || (t.starts_with('/') && t.len() > 1);
    let sa_at = |t: &str| t.strip_prefix(sa.as_str()).is_some_and(tail_ok);
    rest.match_indices(ns.as_str())
        .filter(|(at, _)| *at >= 1)
        .any(|(at, _)| {
            let after = rest.get(at + ns.len()..).unwrap_or_default();
            // `(.+/|)`: nothing, or at least one character and a `/`.
            sa_at(after)
                || after
                    .match_indices('/')
                    .filter(|(i, _)| *i >= 1)
                    .any(|(i, _)| sa_at(after.get(i + 1..).unwrap_or_default()))
        })
}

#[cfg(test)]
mod tests;
