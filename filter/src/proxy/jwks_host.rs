//! Remote JWKS, host side: the seam [`JwksHost`] implemented with host calls over one
//! configuration's [`PerConfig`]. Every decision about fetching, shared records, waiters and
//! the tick is `remote_jwks::runtime`'s; this module moves bytes.

use std::cell::RefCell;

use super::apply::{self, Outcome};
use super::host::{self, HostStatus};
use super::per_config::PerConfig;
use crate::jwt::AuthnStatus;
use crate::remote_jwks::runtime::{JwksHost, JwksRuntime, Redecided, SharedWriteError};
use crate::remote_jwks::{HttpUri, KeyWait, RemoteKeys};

/// The host seam in Envoy, for one callback: host calls, and the decision of a paused request
/// applied as the stream's own `on_http_request_headers` applies it.
struct ProxyHost<'a> {
    state: &'a PerConfig,
}

impl ProxyHost<'_> {
    /// Later host calls act on the root again (fetches are dispatched as the root).
    fn back_to_root(&self) {
        let _ = host::set_effective_context(self.state.root_context_id);
    }
}

impl JwksHost for ProxyHost<'_> {
    fn get_shared(&self, name: &str) -> Result<Option<(Vec<u8>, u32)>, String> {
        host::get_shared_data(name).map_err(|status| status.to_string())
    }

    fn set_shared(&mut self, name: &str, value: &[u8], cas: u32) -> Result<(), SharedWriteError> {
        host::set_shared_data(name, value, cas).map_err(|status| match status {
            HostStatus::CAS_MISMATCH => SharedWriteError::CasMismatch,
            other => SharedWriteError::Refused(other.to_string()),
        })
    }

    fn dispatch(&mut self, cluster: &str, uri: &HttpUri, timeout_ms: u64) -> Result<u32, String> {
        // Dispatch as the root, whatever context was effective before: the response then
        // comes to the root.
        self.back_to_root();
        host::dispatch_http_call(cluster, &uri.get_headers(), timeout_ms)
            .map_err(|status| status.to_string())
    }

    fn response_status(&self) -> Option<Vec<u8>> {
        host::http_call_response_header(":status").ok().flatten()
    }

    fn response_body(&self, len: usize) -> Result<Vec<u8>, String> {
        host::http_call_response_body(len).map_err(|status| status.to_string())
    }

    fn redecide(&mut self, context_id: u32, remote: &dyn RemoteKeys, now: u64) -> Redecided {
        if host::set_effective_context(context_id).is_err() {
            return Redecided::Gone;
        }
        let outcome = match apply::decide_current(self.state, remote, now) {
            Outcome::Continue => {
                if let Err(status) = host::continue_request() {
                    log::warn!("cannot resume a request: {status}");
                }
                Redecided::Continued
            }
            Outcome::Answered => Redecided::Answered,
            Outcome::Wait(wait) => Redecided::Wait(wait),
        };
        self.back_to_root();
        outcome
    }

    fn fail_waiter(&mut self, context_id: u32, status: AuthnStatus) {
        if host::set_effective_context(context_id).is_ok() {
            apply::deny_current(self.state, status);
            self.back_to_root();
        }
    }

    fn set_tick(&mut self, ms: u64) {
        if let Err(status) = host::set_tick_period_ms(ms) {
            log::warn!("cannot set the tick period: {status}");
        }
    }
}

impl PerConfig {
    /// Starts the remote-JWKS runtime of a configuration with remote key sets.
    /// `configuration` is the plugin configuration's bytes as the host gave them: with the
    /// root id they key the shared records, once per configuration.
    pub fn start_jwks(&mut self, configuration: &[u8]) {
        if self.config.remote_jwks.sources.is_empty() {
            return;
        }
        let root_id = match host::get_property(&["plugin_root_id"]) {
            Ok(id) => id.unwrap_or_default(),
            Err(status) => {
                log::debug!("cannot read plugin_root_id ({status}): keying by the configuration");
                Vec::new()
            }
        };
        let mut host = ProxyHost { state: self };
        let runtime =
            JwksRuntime::new(&self.config.remote_jwks, &root_id, configuration, &mut host);
        self.jwks = runtime.map(RefCell::new);
    }

    /// Runs `f` on this configuration's remote-JWKS runtime with the host; `None` without
    /// one, or while it is busy (a host callback re-entered).
    pub fn with_jwks<R>(
        &self,
        f: impl FnOnce(&mut JwksRuntime, &mut dyn JwksHost) -> R,
    ) -> Option<R> {
        let mut runtime = self.jwks.as_ref()?.try_borrow_mut().ok()?;
        Some(f(&mut runtime, &mut ProxyHost { state: self }))
    }
}

/// A request needs keys: remember it, and wake the root at once to fetch them; without a
/// runtime to wait on, its keys cannot come.
pub(super) fn wait(state: &PerConfig, context_id: u32, wait: KeyWait, now: u64) {
    if state
        .with_jwks(|runtime, host| runtime.wait(context_id, wait, now, host))
        .is_none()
    {
        apply::deny_current(state, AuthnStatus::JwksFetchFail);
    }
}
