//! The filter's counters: their names (Envoy-style, under one prefix) and which ones a verdict
//! increments, by index into [`names`]; what a VM counted and has not yet handed to the host
//! ([`Tally`]). The adapter (`proxy::metrics`) defines them with host calls, tallies what this
//! module says, and adds the tally to the host's counters on the root's tick.
//!
//! | counter | counts |
//! |---|---|
//! | `mesh_authn.allowed` | requests let through (no token, valid tokens, CORS preflight, a connection PeerAuthentication accepts on a workload without rules) |
//! | `mesh_authn.denied` | requests the filter answered itself: 401/403 denials and 500 fail-closed refusals |
//! | `mesh_authn.denied.<reason>` | the same, by reason: jwt_verify_lib's status names in snake case (`jwt_expired`, …), the PeerAuthentication reasons (`strict_mtls_no_client_certificate`, …), `rbac_access_denied` for AuthorizationPolicy's 403s, `internal_error` for the 500s |
//! | `mesh_authn.cors_preflight_bypassed` | CORS preflights let through unauthenticated |
//! | `mesh_authn.issuer.<issuer>.allowed` | allowed requests in which a token of this issuer verified |
//! | `mesh_authn.issuer.<issuer>.denied` | denied requests whose reply came from this issuer's rule |
//!
//! | `mesh_authn.authz.no_allow_match` | requests an AuthorizationPolicy denied (`denied.rbac_access_denied`) because ALLOW policies apply and none matched |
//! | `mesh_authn.authz.dry_run_no_allow_match` | requests no dry-run ALLOW policy matched (they would have been denied) |
//! | `mesh_authn.authz.policy.<namespace>.<name>.<event>` | per AuthorizationPolicy, one counter by its action: `allowed` (an ALLOW rule let the request through), `denied` (a DENY rule denied it), `audited` (an AUDIT rule matched); for a dry-run policy `dry_run_allowed`, `dry_run_denied`, `dry_run_audited` (what it would have done) |
//!
//! Every request the filter sees is counted once in `allowed` or `denied`; every `denied` once
//! in one `denied.<reason>`. The AuthorizationPolicy counters are defined when the first
//! request of a configuration is decided, so `/stats` lists them from then on.
//!
//! `<issuer>` is the issuer with every byte outside `[A-Za-z0-9_-]` replaced by `_`
//! (`https://example.com` ⇒ `https___example_com`; an empty issuer is `any`), so it stays one
//! element of Envoy's dotted stat names. Envoy prints them under `wasmcustom.` in `/stats`.
//!
//! Envoy keeps one counter per name for the whole process: every worker's VM, and every
//! configuration in a VM (two listeners with the same `vm_config`, or an old and a new listener
//! while an update drains), increments the same `mesh_authn.allowed`. The names carry no
//! plugin element, deliberately: the per-issuer counters stay per issuer because each
//! configuration counts with its own rules, Envoy's own per-listener statistics
//! (`http.<stat_prefix>.downstream_rq_4xx`) separate listeners, and the names stay stable
//! across a drain.

use std::cell::Cell;

use crate::authz::{Action, EngineResult, Outcome, Policy};
use crate::decision::Decision;
use crate::jwt::AuthnStatus;
use crate::peer_authn::PeerDenial;
use crate::request_authn::Attribution;

/// The common prefix.
pub const PREFIX: &str = "mesh_authn";

/// The `<reason>` of the 500 fail-closed refusals.
pub const INTERNAL_ERROR: &str = "internal_error";

// The index of each counter in [`names`]: the fixed ones, then `denied.<status>` for every
// status but `Ok` in [`AuthnStatus::ALL`]'s order, `denied.<peer reason>` in
// [`PeerDenial::ALL`]'s, and last each rule's issuer `allowed` and `denied`.
/// `mesh_authn.allowed`: a request let through without a RequestAuthentication decision (no
/// rule applies to the workload) increments only this one.
pub const ALLOWED: usize = 0;
const DENIED: usize = 1;
const CORS_PREFLIGHT_BYPASSED: usize = 2;
const DENIED_INTERNAL_ERROR: usize = 3;
const DENIED_BY_STATUS: usize = 4;
const DENIED_BY_PEER: usize = DENIED_BY_STATUS + AuthnStatus::ALL.len() - 1;
const DENIED_BY_AUTHZ: usize = DENIED_BY_PEER + PeerDenial::ALL.len();
const AUTHZ_NO_ALLOW_MATCH: usize = DENIED_BY_AUTHZ + 1;
const AUTHZ_DRY_RUN_NO_ALLOW_MATCH: usize = DENIED_BY_AUTHZ + 2;
const BY_RULE: usize = DENIED_BY_AUTHZ + 3;

/// Every counter's full name, in index order, for rules with these issuers (one entry per rule,
/// by index into the providers). Two rules of one issuer give one name twice: Envoy returns
/// the same id for a name defined twice.
pub fn names<'a>(issuers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let fixed = ["allowed", "denied", "cors_preflight_bypassed"]
        .into_iter()
        .map(str::to_owned)
        .chain(std::iter::once(format!("denied.{INTERNAL_ERROR}")));
    let by_status = AuthnStatus::ALL
        .iter()
        .filter(|s| **s != AuthnStatus::Ok)
        .map(|s| format!("denied.{}", snake_case(&format!("{s:?}"))));
    let by_peer = PeerDenial::ALL
        .iter()
        .map(|d| format!("denied.{}", d.reason()));
    let authz = [
        "denied.rbac_access_denied",
        "authz.no_allow_match",
        "authz.dry_run_no_allow_match",
    ]
    .map(str::to_owned);
    let by_rule = issuers.into_iter().flat_map(|issuer| {
        let issuer = issuer_element(issuer);
        [
            format!("issuer.{issuer}.allowed"),
            format!("issuer.{issuer}.denied"),
        ]
    });
    fixed
        .chain(by_status)
        .chain(by_peer)
        .chain(authz)
        .chain(by_rule)
        .map(|name| format!("{PREFIX}.{name}"))
        .collect()
}

/// The counters one RequestAuthentication decision increments: `allowed` (with
/// `cors_preflight_bypassed` for a preflight, and the issuer `allowed` of each rule that
/// verified a token), or `denied`, its `denied.<status>` and the issuer `denied` of the rule
/// whose failure is the reply; none for [`Decision::NeedKeys`], which is not a verdict yet
/// (counted when the request is decided after the fetch).
pub fn for_decision<'a>(
    decision: &Decision,
    attribution: &'a Attribution,
) -> impl Iterator<Item = usize> + 'a {
    let (fixed, verified): ([Option<usize>; 3], &'a [usize]) = match decision {
        Decision::Allow(_) => (
            [
                Some(ALLOWED),
                attribution
                    .cors_preflight
                    .then_some(CORS_PREFLIGHT_BYPASSED),
                None,
            ],
            &attribution.verified,
        ),
        Decision::NeedKeys(_) => ([None; 3], &[]),
        Decision::Deny(status) => (
            [
                Some(DENIED),
                denied_by_status(*status),
                attribution.denied_by.and_then(|rule| rule_counter(rule, 1)),
            ],
            &[],
        ),
    };
    fixed
        .into_iter()
        .flatten()
        .chain(verified.iter().filter_map(|rule| rule_counter(*rule, 0)))
}

/// The counters a PeerAuthentication refusal increments.
pub fn for_peer_denial(denial: PeerDenial) -> [usize; 2] {
    [DENIED, DENIED_BY_PEER + denial as usize]
}

/// The counters a 500 fail-closed refusal increments.
pub const FOR_INTERNAL_ERROR: [usize; 2] = [DENIED, DENIED_INTERNAL_ERROR];

/// `denied.<status>`; `None` for `Ok`, which never denies.
fn denied_by_status(status: AuthnStatus) -> Option<usize> {
    let index = status as usize;
    let ok = AuthnStatus::Ok as usize;
    match index.cmp(&ok) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(DENIED_BY_STATUS + index),
        std::cmp::Ordering::Greater => Some(DENIED_BY_STATUS + index - 1),
    }
}

/// Rule `rule`'s issuer `allowed` (`which` 0) or `denied` (1); `None` past any index.
fn rule_counter(rule: usize, which: usize) -> Option<usize> {
    rule.checked_mul(2)?
        .checked_add(BY_RULE)?
        .checked_add(which)
}

/// The issuer as one stat-name element.
fn issuer_element(issuer: &str) -> String {
    if issuer.is_empty() {
        return "any".to_owned();
    }
    issuer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The per-policy AuthorizationPolicy counters' full names, one per policy in
/// [`crate::authz::Authz::policies`]' order: `authz.policy.<namespace>.<name>.<event>`, the
/// event by the policy's action (`allowed`, `denied`, `audited`; `dry_run_…` for a dry-run
/// policy).
pub fn authz_names(policies: &[Policy]) -> Vec<String> {
    policies
        .iter()
        .map(|p| {
            let event = match p.action {
                Action::Allow => "allowed",
                Action::Deny => "denied",
                Action::Audit => "audited",
            };
            format!(
                "{PREFIX}.authz.policy.{}.{}.{}{event}",
                issuer_element(&p.namespace),
                issuer_element(&p.name),
                if p.dry_run { "dry_run_" } else { "" }
            )
        })
        .collect()
}

/// The counters of [`names`] one AuthorizationPolicy outcome increments: on a denial
/// `denied` and `denied.rbac_access_denied` (with `authz.no_allow_match` when no ALLOW rule
/// matched), and `authz.dry_run_no_allow_match` when dry-run ALLOW policies matched nothing.
pub fn for_authz(outcome: &Outcome<'_>) -> impl Iterator<Item = usize> {
    let denied = outcome.denied.is_some();
    [
        denied.then_some(DENIED),
        denied.then_some(DENIED_BY_AUTHZ),
        matches!(outcome.denied, Some(None)).then_some(AUTHZ_NO_ALLOW_MATCH),
        (outcome.shadow_allow == EngineResult::NoMatch).then_some(AUTHZ_DRY_RUN_NO_ALLOW_MATCH),
    ]
    .into_iter()
    .flatten()
}

/// The per-policy counters (indexes into [`authz_names`]) one outcome increments: the policy
/// of each rule that decided, audited, or matched in dry run.
pub fn for_authz_policies(outcome: &Outcome<'_>) -> impl Iterator<Item = usize> {
    [
        outcome.denied.flatten(),
        outcome.allowed_by,
        outcome.audited_by,
        outcome.shadow_deny.matched(),
        outcome.shadow_allow.matched(),
        outcome.shadow_audit.matched(),
    ]
    .map(|m| m.map(|m| m.policy_index))
    .into_iter()
    .flatten()
}

/// The longest time, in ms, between two flushes of a [`Tally`] to the host: the root's tick
/// when no remote-JWKS runtime sets it, and that runtime's longest tick.
pub const FLUSH_MS: u64 = crate::remote_jwks::runtime::IDLE_TICK_MS;

/// Counts not yet added to the host's counters, one per counter of a list ([`names`] or
/// [`authz_names`]), by the same index. A verdict adds to it in the VM; the adapter hands
/// what it holds to the host in one call per counter that changed ([`Tally::drain`]) on the
/// root's tick, rather than one host call per counter on every request (README "Counters").
#[derive(Debug, Default)]
pub struct Tally {
    counts: Vec<Cell<u64>>,
}

impl Tally {
    /// A tally of `len` counters, all zero.
    pub fn new(len: usize) -> Tally {
        Tally {
            counts: (0..len).map(|_| Cell::new(0)).collect(),
        }
    }

    /// Adds one to `counter`; an index past the list is ignored, as the host ignores an id it
    /// did not define.
    pub fn add(&self, counter: usize) {
        if let Some(count) = self.counts.get(counter) {
            count.set(count.get().saturating_add(1));
        }
    }

    /// Each counter that was added to since the last drain, with what was added, in index
    /// order; the tally is zero afterwards.
    pub fn drain(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter_map(|(i, count)| Some((i, count.take())).filter(|(_, n)| *n > 0))
    }
}

/// `JwtAudienceNotAllowed` ⇒ `jwt_audience_not_allowed`.
/// An underscore starts each word; an acronym is one word (`ECKey` ⇒ `ec_key`).
fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars.get(i - 1).copied().unwrap_or_default();
            let next = chars.get(i + 1).copied().unwrap_or_default();
            if !prev.is_ascii_uppercase() || next.is_ascii_lowercase() {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a verdict increments, under rules with these issuers.
    fn incremented(issuers: &[&str], indexes: impl IntoIterator<Item = usize>) -> Vec<String> {
        let names = names(issuers.iter().copied());
        indexes
            .into_iter()
            .map(|i| {
                names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("index {i}"))
            })
            .collect()
    }

    #[test]
    fn a_tally_gives_what_was_added_once_and_only_for_counters_that_moved() {
        let tally = Tally::new(4);
        for counter in [0, 2, 2, 3, 2, 9] {
            tally.add(counter);
        }
        assert_eq!(tally.drain().collect::<Vec<_>>(), [(0, 1), (2, 3), (3, 1)]);
        assert_eq!(tally.drain().count(), 0, "a drain empties it");
        tally.add(1);
        assert_eq!(tally.drain().collect::<Vec<_>>(), [(1, 1)]);
        let empty = Tally::default();
        empty.add(0);
        assert_eq!(empty.drain().count(), 0);
    }

    #[test]
    fn a_drain_left_unfinished_keeps_the_counts_it_did_not_reach() {
        let tally = Tally::new(3);
        tally.add(0);
        tally.add(2);
        assert_eq!(tally.drain().next(), Some((0, 1)));
        assert_eq!(tally.drain().collect::<Vec<_>>(), [(2, 1)]);
    }

    #[test]
    fn verdicts_increment_the_documented_counters() {
        use crate::decision::Mutations;
        let issuers = ["https://a.example", "", "https://a.example"];
        let mut attribution = Attribution::default();
        attribution.verified = smallvec::smallvec![0, 1];
        assert_eq!(
            incremented(
                &issuers,
                for_decision(&Decision::Allow(Mutations::default()), &attribution)
            ),
            [
                "mesh_authn.allowed",
                "mesh_authn.issuer.https___a_example.allowed",
                "mesh_authn.issuer.any.allowed",
            ]
        );
        let mut attribution = Attribution::default();
        attribution.cors_preflight = true;
        assert_eq!(
            incremented(
                &issuers,
                for_decision(&Decision::Allow(Mutations::default()), &attribution)
            ),
            ["mesh_authn.allowed", "mesh_authn.cors_preflight_bypassed"]
        );
        let mut attribution = Attribution::default();
        attribution.denied_by = Some(2);
        assert_eq!(
            incremented(
                &issuers,
                for_decision(&Decision::Deny(AuthnStatus::JwtExpired), &attribution)
            ),
            [
                "mesh_authn.denied",
                "mesh_authn.denied.jwt_expired",
                "mesh_authn.issuer.https___a_example.denied",
            ]
        );
        assert_eq!(
            incremented(
                &issuers,
                for_decision(
                    &Decision::Deny(AuthnStatus::JwtMissed),
                    &Attribution::default()
                )
            ),
            ["mesh_authn.denied", "mesh_authn.denied.jwt_missed"]
        );
        assert_eq!(
            incremented(&issuers, for_peer_denial(PeerDenial::NoSpiffeId)),
            [
                "mesh_authn.denied",
                "mesh_authn.denied.strict_mtls_no_spiffe_id"
            ]
        );
        assert_eq!(
            incremented(&issuers, FOR_INTERNAL_ERROR),
            ["mesh_authn.denied", "mesh_authn.denied.internal_error"]
        );
        assert_eq!(incremented(&issuers, [ALLOWED]), ["mesh_authn.allowed"]);
    }

    #[test]
    fn every_status_but_ok_and_every_peer_reason_has_its_own_counter() {
        let names = names([]);
        let mut seen = std::collections::BTreeSet::new();
        for status in AuthnStatus::ALL {
            let counter = for_decision(&Decision::Deny(*status), &Attribution::default()).nth(1);
            match (status, counter) {
                (AuthnStatus::Ok, None) => {}
                (_, Some(i)) => {
                    let name = names.get(i).map(String::as_str).unwrap_or_default();
                    assert!(name.starts_with("mesh_authn.denied."), "{status:?}: {name}");
                    assert!(seen.insert(i), "{status:?} shares {name}");
                }
                (_, None) => panic!("{status:?} has no counter"),
            }
        }
        for denial in PeerDenial::ALL {
            let [_, i] = for_peer_denial(denial);
            assert_eq!(
                names.get(i).map(String::as_str),
                Some(format!("mesh_authn.denied.{}", denial.reason()).as_str())
            );
            assert!(seen.insert(i));
        }
        assert!(seen.insert(FOR_INTERNAL_ERROR[1]));
        assert_eq!(
            names.get(DENIED_BY_AUTHZ).map(String::as_str),
            Some("mesh_authn.denied.rbac_access_denied")
        );
        assert!(seen.insert(DENIED_BY_AUTHZ));
        // Every denied.<reason> name is reached by exactly one verdict.
        let reasons = names
            .iter()
            .filter(|n| n.starts_with("mesh_authn.denied."))
            .count();
        assert_eq!(seen.len(), reasons);
    }

    /// AuthorizationPolicy outcomes, over policies as a user writes them.
    #[test]
    fn authz_outcomes_increment_the_documented_counters() {
        use crate::authz::Attributes;
        use crate::config::FilterConfig;
        use crate::request::Request;
        let ap = |name: &str, dry: &str, spec: &str| {
            format!(
                "- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {{name: {name}, namespace: foo, annotations: {{istio.io/dry-run: \"{dry}\"}}}}\n  spec: {spec}\n"
            )
        };
        let text = format!(
            "workload: {{namespace: foo}}\npolicies:\n{}{}{}{}",
            ap(
                "allow-get",
                "false",
                "{rules: [{to: [{operation: {methods: [GET]}}]}]}"
            ),
            ap(
                "deny-x",
                "false",
                "{action: DENY, rules: [{to: [{operation: {paths: [/x]}}]}]}"
            ),
            ap(
                "dry.allow",
                "true",
                "{rules: [{to: [{operation: {paths: [/dry]}}]}]}"
            ),
            ap("audit", "false", "{action: AUDIT, rules: [{}]}"),
        );
        let config = FilterConfig::parse(text.as_bytes()).unwrap();
        let main = names([]);
        let policies = authz_names(config.authz.policies());
        assert_eq!(
            policies,
            [
                "mesh_authn.authz.policy.foo.allow-get.allowed",
                "mesh_authn.authz.policy.foo.deny-x.denied",
                "mesh_authn.authz.policy.foo.dry_allow.dry_run_allowed",
                "mesh_authn.authz.policy.foo.audit.audited",
            ]
        );
        let counted = |method: &str, path: &str| {
            let headers = Request::from_pairs(&[(":method", method), (":path", path)]);
            let attrs = Attributes {
                headers: &headers,
                peer: Default::default(),
                remote_ip: None,
                destination_ip: None,
                destination_port: None,
                sni: None,
                token: None,
            };
            let outcome = config.authz.evaluate(&attrs);
            let mut got: Vec<&str> = for_authz(&outcome)
                .map(|i| main[i].as_str())
                .chain(for_authz_policies(&outcome).map(|i| policies[i].as_str()))
                .collect();
            got.sort_unstable();
            got
        };
        assert_eq!(
            counted("GET", "/"),
            [
                "mesh_authn.authz.dry_run_no_allow_match",
                "mesh_authn.authz.policy.foo.allow-get.allowed",
                "mesh_authn.authz.policy.foo.audit.audited",
            ]
        );
        assert_eq!(
            counted("GET", "/x"),
            [
                "mesh_authn.authz.policy.foo.audit.audited",
                "mesh_authn.authz.policy.foo.deny-x.denied",
                "mesh_authn.denied",
                "mesh_authn.denied.rbac_access_denied",
            ]
        );
        assert_eq!(
            counted("POST", "/dry"),
            [
                "mesh_authn.authz.no_allow_match",
                "mesh_authn.authz.policy.foo.audit.audited",
                "mesh_authn.authz.policy.foo.dry_allow.dry_run_allowed",
                "mesh_authn.denied",
                "mesh_authn.denied.rbac_access_denied",
            ]
        );
    }

    #[test]
    fn name_elements() {
        assert_eq!(
            snake_case("JwtAudienceNotAllowed"),
            "jwt_audience_not_allowed"
        );
        assert_eq!(snake_case("JwksECKeyBadX"), "jwks_ec_key_bad_x");
        assert_eq!(snake_case("JwksX509ParseError"), "jwks_x509_parse_error");
        assert_eq!(snake_case("Ok"), "ok");
        assert_eq!(issuer_element("https://example.com"), "https___example_com");
        assert_eq!(issuer_element(""), "any");
    }

    #[test]
    fn reasons_are_unique_single_elements_without_ok() {
        let reasons: Vec<String> = names([])
            .iter()
            .filter_map(|n| n.strip_prefix("mesh_authn.denied."))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            reasons.len(),
            AuthnStatus::ALL.len() - 1 + PeerDenial::ALL.len() + 2
        );
        let unique: std::collections::BTreeSet<&String> = reasons.iter().collect();
        assert_eq!(unique.len(), reasons.len());
        for r in &reasons {
            assert!(r != "ok" && !r.is_empty(), "{r}");
            assert!(
                r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{r}"
            );
        }
    }

    #[test]
    fn statuses_index_like_all() {
        for (i, s) in AuthnStatus::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
