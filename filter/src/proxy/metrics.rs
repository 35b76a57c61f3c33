//! Counters through proxy-wasm metrics, Envoy-style names under one prefix. Defined when a
//! configuration is compiled and held by that configuration's [`PerConfig`](super::per_config)
//! (several configurations can share one VM); a request only increments ids its configuration
//! already has.
//!
//! | counter | counts |
//! |---|---|
//! | `mesh_authn.allowed` | requests let through (no token, valid tokens, CORS preflight, a connection PeerAuthentication accepts on a workload without rules) |
//! | `mesh_authn.denied` | requests the filter answered itself: 401/403 denials and 500 fail-closed refusals |
//! | `mesh_authn.denied.<reason>` | the same, by reason: jwt_verify_lib's status names in snake case (`jwt_expired`, …), the PeerAuthentication reasons (`strict_mtls_no_client_certificate`, …), `internal_error` for the 500s |
//! | `mesh_authn.cors_preflight_bypassed` | CORS preflights let through unauthenticated |
//! | `mesh_authn.issuer.<issuer>.allowed` | allowed requests in which a token of this issuer verified |
//! | `mesh_authn.issuer.<issuer>.denied` | denied requests whose reply came from this issuer's rule |
//!
//! Every request the filter sees is counted once in `allowed` or `denied`; every `denied` once
//! in one `denied.<reason>`.
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

use super::host::{self, HostStatus};
use crate::decision::Decision;
use crate::jwt::AuthnStatus;
use crate::peer_authn::PeerDenial;
use crate::request_authn::{Attribution, Provider};

/// The common prefix.
pub const PREFIX: &str = "mesh_authn";

/// The `<reason>` of the 500 fail-closed refusals.
pub const INTERNAL_ERROR: &str = "internal_error";

/// Counter ids of one configuration.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: u32,
    denied: u32,
    cors_preflight_bypassed: u32,
    /// Indexed like [`AuthnStatus::ALL`]; `None` for `Ok`, which never denies.
    denied_by_status: Vec<Option<u32>>,
    /// Indexed like [`PeerDenial::ALL`].
    denied_by_peer: Vec<u32>,
    denied_internal_error: u32,
    /// Per rule (index into the providers): the ids of its issuer's `allowed` and `denied`.
    by_rule: Vec<(u32, u32)>,
}

/// Every `<reason>` of `mesh_authn.denied.<reason>`, in the order they are defined.
#[cfg(test)]
pub fn reasons() -> impl Iterator<Item = String> {
    AuthnStatus::ALL
        .iter()
        .filter(|s| **s != AuthnStatus::Ok)
        .map(|s| snake_case(&format!("{s:?}")))
        .chain(PeerDenial::ALL.iter().map(|d| d.reason().to_owned()))
        .chain(std::iter::once(INTERNAL_ERROR.to_owned()))
}

impl Metrics {
    /// Defines every counter for these rules.
    pub fn define(providers: &[Provider]) -> Result<Metrics, HostStatus> {
        let define = |name: &str| host::define_counter(&format!("{PREFIX}.{name}"));
        let mut by_rule = Vec::with_capacity(providers.len());
        for p in providers {
            let issuer = issuer_element(&p.issuer);
            // Envoy returns the same id for a name defined twice.
            by_rule.push((
                define(&format!("issuer.{issuer}.allowed"))?,
                define(&format!("issuer.{issuer}.denied"))?,
            ));
        }
        let mut denied_by_status = Vec::with_capacity(AuthnStatus::ALL.len());
        for status in AuthnStatus::ALL {
            denied_by_status.push(match status {
                AuthnStatus::Ok => None,
                _ => Some(define(&format!(
                    "denied.{}",
                    snake_case(&format!("{status:?}"))
                ))?),
            });
        }
        let mut denied_by_peer = Vec::with_capacity(PeerDenial::ALL.len());
        for denial in PeerDenial::ALL {
            denied_by_peer.push(define(&format!("denied.{}", denial.reason()))?);
        }
        Ok(Metrics {
            allowed: define("allowed")?,
            denied: define("denied")?,
            cors_preflight_bypassed: define("cors_preflight_bypassed")?,
            denied_by_status,
            denied_by_peer,
            denied_internal_error: define(&format!("denied.{INTERNAL_ERROR}"))?,
            by_rule,
        })
    }

    /// Counts one RequestAuthentication decision. A failure to count is ignored: counters
    /// never change a verdict.
    pub fn record(&self, decision: &Decision, attribution: &Attribution) {
        let mut ids: [Option<u32>; 3] = [None; 3];
        match decision {
            Decision::Allow(_) => {
                ids[0] = Some(self.allowed);
                if attribution.cors_preflight {
                    ids[1] = Some(self.cors_preflight_bypassed);
                }
                for i in &attribution.verified {
                    if let Some((allowed, _)) = self.by_rule.get(*i) {
                        inc(*allowed);
                    }
                }
            }
            // Not a verdict yet: counted when the request is decided after the fetch.
            Decision::NeedKeys(_) => return,
            Decision::Deny(status) => {
                ids[0] = Some(self.denied);
                ids[1] = self
                    .denied_by_status
                    .get(*status as usize)
                    .copied()
                    .flatten();
                ids[2] = attribution
                    .denied_by
                    .and_then(|i| self.by_rule.get(i))
                    .map(|(_, denied)| *denied);
            }
        }
        for id in ids.into_iter().flatten() {
            inc(id);
        }
    }

    /// Counts a request let through without a RequestAuthentication decision (no rule
    /// applies to the workload).
    pub fn record_allowed(&self) {
        inc(self.allowed);
    }

    /// Counts a PeerAuthentication refusal.
    pub fn record_peer_denial(&self, denial: PeerDenial) {
        inc(self.denied);
        if let Some(id) = self.denied_by_peer.get(denial as usize) {
            inc(*id);
        }
    }

    /// Counts a 500 fail-closed refusal.
    pub fn record_internal_error(&self) {
        inc(self.denied);
        inc(self.denied_internal_error);
    }
}

fn inc(id: u32) {
    let _ = host::increment_metric(id, 1);
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

    #[test]
    fn names() {
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
        let reasons: Vec<String> = reasons().collect();
        assert_eq!(
            reasons.len(),
            AuthnStatus::ALL.len() - 1 + PeerDenial::ALL.len() + 1
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
