//! Counters through proxy-wasm metrics, Envoy-style names under one prefix. Defined once per
//! VM when the configuration is compiled; a request only increments ids it already has.
//!
//! | counter | counts |
//! |---|---|
//! | `mesh_authn.allowed` | requests let through (no token, valid tokens, CORS preflight) |
//! | `mesh_authn.denied` | requests answered with a local 401/403 |
//! | `mesh_authn.denied.<reason>` | the same, by reason (`jwt_expired`, `jwt_audience_not_allowed`, …: jwt_verify_lib's status names in snake case) |
//! | `mesh_authn.cors_preflight_bypassed` | CORS preflights let through unauthenticated |
//! | `mesh_authn.issuer.<issuer>.allowed` | allowed requests in which a token of this issuer verified |
//! | `mesh_authn.issuer.<issuer>.denied` | denied requests whose reply came from this issuer's rule |
//!
//! `<issuer>` is the issuer with every byte outside `[A-Za-z0-9_-]` replaced by `_`
//! (`https://example.com` ⇒ `https___example_com`; an empty issuer is `any`), so it stays one
//! element of Envoy's dotted stat names. Envoy prints them under `wasmcustom.` in `/stats`.

use std::cell::RefCell;
use std::rc::Rc;

use super::host::{self, HostStatus};
use crate::decision::Decision;
use crate::jwt::AuthnStatus;
use crate::request_authn::{Attribution, Provider};

/// The common prefix.
pub const PREFIX: &str = "mesh_authn";

/// Counter ids, defined once per configuration.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    allowed: u32,
    denied: u32,
    cors_preflight_bypassed: u32,
    /// Indexed like [`AuthnStatus::ALL`].
    denied_by_reason: Vec<u32>,
    /// Per rule (index into the providers): the ids of its issuer's `allowed` and `denied`.
    by_rule: Vec<(u32, u32)>,
}

impl Metrics {
    /// Defines every counter for these rules.
    pub fn define(providers: &[Provider]) -> Result<Metrics, HostStatus> {
        let mut by_rule = Vec::with_capacity(providers.len());
        for p in providers {
            let issuer = issuer_element(&p.issuer);
            // Envoy returns the same id for a name defined twice.
            by_rule.push((
                host::define_counter(&format!("{PREFIX}.issuer.{issuer}.allowed"))?,
                host::define_counter(&format!("{PREFIX}.issuer.{issuer}.denied"))?,
            ));
        }
        let mut denied_by_reason = Vec::with_capacity(AuthnStatus::ALL.len());
        for status in AuthnStatus::ALL {
            denied_by_reason.push(host::define_counter(&format!(
                "{PREFIX}.denied.{}",
                snake_case(&format!("{status:?}"))
            ))?);
        }
        Ok(Metrics {
            allowed: host::define_counter(&format!("{PREFIX}.allowed"))?,
            denied: host::define_counter(&format!("{PREFIX}.denied"))?,
            cors_preflight_bypassed: host::define_counter(&format!(
                "{PREFIX}.cors_preflight_bypassed"
            ))?,
            denied_by_reason,
            by_rule,
        })
    }

    /// Counts one decision. A failure to count is ignored: counters never change a verdict.
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
                ids[1] = self.denied_by_reason.get(*status as usize).copied();
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
}

thread_local! {
    /// The VM's counters (a VM is one thread): installed by the root context when configured,
    /// used by every decision, including those taken for requests resumed after a key fetch.
    static INSTALLED: RefCell<Option<Rc<Metrics>>> = const { RefCell::new(None) };
}

/// Makes these the counters [`record`] uses (`None`: count nothing).
pub fn install(metrics: Option<Rc<Metrics>>) {
    INSTALLED.with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            *m = metrics;
        }
    });
}

/// Counts one decision in the installed counters, if any.
pub fn record(decision: &Decision, attribution: &Attribution) {
    INSTALLED.with(|m| {
        if let Ok(m) = m.try_borrow() {
            if let Some(metrics) = m.as_ref() {
                metrics.record(decision, attribution);
            }
        }
    });
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
    fn statuses_index_like_all() {
        for (i, s) in AuthnStatus::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
