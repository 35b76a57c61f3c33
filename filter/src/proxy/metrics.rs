//! Counters through proxy-wasm metrics. Their names, and which ones a verdict increments, are
//! the core's ([`crate::counters`]); here they are defined with host calls when a configuration
//! is compiled, held by that configuration's [`PerConfig`](super::per_config) (several
//! configurations can share one VM), tallied in the VM per request, and added to the host's
//! counters on the root's tick and when the plugin is removed ([`Metrics::flush`]): a request
//! makes no host call to count.

use std::cell::OnceCell;

use super::host::{self, HostStatus};
use crate::authz::{Authz, Outcome};
use crate::counters::{self, Tally};
use crate::decision::Decision;
use crate::peer_authn::PeerDenial;
use crate::request_authn::{Attribution, Provider};

/// Host counter ids and what the VM counted for them since the last flush.
#[derive(Debug, Default)]
struct Counters {
    ids: Vec<u32>,
    tally: Tally,
}

impl Counters {
    fn new(ids: Vec<u32>) -> Counters {
        let tally = Tally::new(ids.len());
        Counters { ids, tally }
    }

    /// A failure to count is ignored: counters never change a verdict.
    fn flush(&self) {
        for (counter, n) in self.tally.drain() {
            if let Some(id) = self.ids.get(counter) {
                let _ = host::increment_metric(*id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}

/// Counter ids and tallies of one configuration, indexed like [`counters::names`].
#[derive(Debug, Default)]
pub struct Metrics {
    fixed: Counters,
    /// The AuthorizationPolicy counters, indexed like [`counters::authz_names`]: defined at the
    /// first decision (none when the host refused them).
    authz: OnceCell<Counters>,
}

impl Metrics {
    /// Defines every counter for these rules.
    pub fn define(providers: &[Provider]) -> Result<Metrics, HostStatus> {
        let ids = counters::names(providers.iter().map(|p| p.issuer.as_str()))
            .iter()
            .map(|name| host::define_counter(name))
            .collect::<Result<Vec<u32>, HostStatus>>()?;
        Ok(Metrics {
            fixed: Counters::new(ids),
            authz: OnceCell::new(),
        })
    }

    /// Adds what was counted since the last flush to the host's counters.
    pub fn flush(&self) {
        self.fixed.flush();
        if let Some(authz) = self.authz.get() {
            authz.flush();
        }
    }

    /// Counts one AuthorizationPolicy outcome of `authz` (defining its per-policy counters
    /// at the first one).
    pub fn record_authz(&self, authz: &Authz, outcome: &Outcome<'_>) {
        for counter in counters::for_authz(outcome) {
            self.fixed.tally.add(counter);
        }
        let policies = self.authz.get_or_init(|| {
            Counters::new(
                counters::authz_names(authz.policies())
                    .iter()
                    .map(|name| host::define_counter(name))
                    .collect::<Result<Vec<u32>, HostStatus>>()
                    .unwrap_or_default(),
            )
        });
        for counter in counters::for_authz_policies(outcome) {
            policies.tally.add(counter);
        }
    }

    /// Counts one RequestAuthentication decision.
    pub fn record(&self, decision: &Decision, attribution: &Attribution) {
        for counter in counters::for_decision(decision, attribution) {
            self.fixed.tally.add(counter);
        }
    }

    /// Counts a request let through without a RequestAuthentication decision (no rule
    /// applies to the workload).
    pub fn record_allowed(&self) {
        self.fixed.tally.add(counters::ALLOWED);
    }

    /// Counts a PeerAuthentication refusal.
    pub fn record_peer_denial(&self, denial: PeerDenial) {
        for counter in counters::for_peer_denial(denial) {
            self.fixed.tally.add(counter);
        }
    }

    /// Counts a 500 fail-closed refusal.
    pub fn record_internal_error(&self) {
        for counter in counters::FOR_INTERNAL_ERROR {
            self.fixed.tally.add(counter);
        }
    }
}
