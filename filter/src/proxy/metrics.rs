//! Counters through proxy-wasm metrics. Their names, and which ones a verdict increments, are
//! the core's ([`crate::counters`]); here they are defined with host calls when a configuration
//! is compiled, held by that configuration's [`PerConfig`](super::per_config) (several
//! configurations can share one VM), and incremented: a request only increments ids its
//! configuration already has.

use std::cell::OnceCell;

use super::host::{self, HostStatus};
use crate::authz::{Authz, Outcome};
use crate::counters;
use crate::decision::Decision;
use crate::peer_authn::PeerDenial;
use crate::request_authn::{Attribution, Provider};

/// Counter ids of one configuration, indexed like [`counters::names`].
#[derive(Debug, Default)]
pub struct Metrics {
    ids: Vec<u32>,
    /// The AuthorizationPolicy counters, indexed like [`counters::authz_names`]: defined at the
    /// first decision (empty when the host refused them).
    authz: OnceCell<Vec<u32>>,
}

impl Metrics {
    /// Defines every counter for these rules.
    pub fn define(providers: &[Provider]) -> Result<Metrics, HostStatus> {
        let ids = counters::names(providers.iter().map(|p| p.issuer.as_str()))
            .iter()
            .map(|name| host::define_counter(name))
            .collect::<Result<Vec<u32>, HostStatus>>()?;
        Ok(Metrics {
            ids,
            authz: OnceCell::new(),
        })
    }

    /// Counts one AuthorizationPolicy outcome of `authz` (defining its per-policy counters
    /// at the first one).
    pub fn record_authz(&self, authz: &Authz, outcome: &Outcome<'_>) {
        for counter in counters::for_authz(outcome) {
            self.inc(counter);
        }
        let ids = self.authz.get_or_init(|| {
            counters::authz_names(authz.policies())
                .iter()
                .map(|name| host::define_counter(name))
                .collect::<Result<Vec<u32>, HostStatus>>()
                .unwrap_or_default()
        });
        for counter in counters::for_authz_policies(outcome) {
            if let Some(id) = ids.get(counter) {
                let _ = host::increment_metric(*id, 1);
            }
        }
    }

    /// Counts one RequestAuthentication decision. A failure to count is ignored: counters
    /// never change a verdict.
    pub fn record(&self, decision: &Decision, attribution: &Attribution) {
        for counter in counters::for_decision(decision, attribution) {
            self.inc(counter);
        }
    }

    /// Counts a request let through without a RequestAuthentication decision (no rule
    /// applies to the workload).
    pub fn record_allowed(&self) {
        self.inc(counters::ALLOWED);
    }

    /// Counts a PeerAuthentication refusal.
    pub fn record_peer_denial(&self, denial: PeerDenial) {
        for counter in counters::for_peer_denial(denial) {
            self.inc(counter);
        }
    }

    /// Counts a 500 fail-closed refusal.
    pub fn record_internal_error(&self) {
        for counter in counters::FOR_INTERNAL_ERROR {
            self.inc(counter);
        }
    }

    fn inc(&self, counter: usize) {
        if let Some(id) = self.ids.get(counter) {
            let _ = host::increment_metric(*id, 1);
        }
    }
}
