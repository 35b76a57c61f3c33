//! Remote JWKS, host side: the seam [`JwksHost`] implemented with host calls, and the runtime
//! of one configuration as its root and streams share it. Every decision about fetching,
//! shared records, waiters and the tick is `remote_jwks::runtime`'s; this module moves bytes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::apply::{self, Outcome};
use super::host::{self, CAS_MISMATCH};
use super::per_config::PerConfig;
use crate::jwt::AuthnStatus;
use crate::remote_jwks::cache::CacheView;
use crate::remote_jwks::runtime::{JwksHost, JwksRuntime, Redecided, SharedWriteError};
use crate::remote_jwks::{HttpUri, KeyWait, RemoteKeys};

/// The runtime as the root and its streams share it (one VM is single-threaded).
pub type SharedRuntime = Rc<RefCell<ProxyJwks>>;

/// One configuration's remote-JWKS runtime with the host it runs over.
pub struct ProxyJwks {
    runtime: JwksRuntime,
    host: ProxyHost,
}

/// The host seam in Envoy: host calls, and the decision of a paused request applied as the
/// stream's own `on_http_request_headers` applies it.
struct ProxyHost {
    /// The configuration's state, for the decisions taken when keys arrive.
    state: Rc<PerConfig>,
    root_context_id: u32,
}

impl ProxyHost {
    /// Later host calls act on the root again (fetches are dispatched as the root).
    fn back_to_root(&self) {
        let _ = host::set_effective_context(self.root_context_id);
    }
}

impl JwksHost for ProxyHost {
    fn get_shared(&self, name: &str) -> Result<Option<(Vec<u8>, u32)>, String> {
        host::get_shared_data(name).map_err(|status| status.to_string())
    }

    fn set_shared(&mut self, name: &str, value: &[u8], cas: u32) -> Result<(), SharedWriteError> {
        host::set_shared_data(name, value, cas).map_err(|status| match status {
            CAS_MISMATCH => SharedWriteError::CasMismatch,
            other => SharedWriteError::Refused(other.to_string()),
        })
    }

    fn dispatch(&mut self, cluster: &str, uri: &HttpUri, timeout_ms: u64) -> Result<u32, String> {
        // Dispatch as the root, whatever context was effective before.
        self.back_to_root();
        let headers = vec![
            (":method", "GET"),
            (":path", uri.path.as_str()),
            (":authority", uri.authority.as_str()),
            ("accept", "application/json"),
        ];
        // The SDK's `dispatch_http_call`: it is the only way to register the call with the
        // SDK's dispatcher, without which `on_http_call_response` would panic on an unknown
        // token. It panics only on statuses Envoy's `httpCall` never returns (it returns Ok,
        // BadArgument, InternalFailure).
        proxy_wasm::hostcalls::dispatch_http_call(
            cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(timeout_ms),
        )
        .map_err(|status| format!("{status:?}"))
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
        let outcome = match apply::decide_current(&self.state, remote, now) {
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
            apply::deny_current(&self.state, status);
            self.back_to_root();
        }
    }

    fn set_tick(&mut self, ms: u64) {
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        if let Err(status) = host::set_tick_period_ms(ms) {
            log::warn!("cannot set the tick period: {status}");
        }
    }
}

impl ProxyJwks {
    /// The runtime for a configuration with remote key sets; `None` without any.
    /// `configuration` is the plugin configuration's bytes as the host gave them: with the
    /// root id they key the shared records, once per configuration.
    pub fn new(
        state: &Rc<PerConfig>,
        configuration: &[u8],
        root_context_id: u32,
    ) -> Option<SharedRuntime> {
        let remote = &state.config.remote_jwks;
        if remote.sources.is_empty() {
            return None;
        }
        let root_id = match host::get_property(&["plugin_root_id"]) {
            Ok(id) => id.unwrap_or_default(),
            Err(status) => {
                log::debug!("cannot read plugin_root_id ({status}): keying by the configuration");
                Vec::new()
            }
        };
        let mut host = ProxyHost {
            state: Rc::clone(state),
            root_context_id,
        };
        let runtime = JwksRuntime::new(remote, &root_id, configuration, &mut host)?;
        Some(Rc::new(RefCell::new(ProxyJwks { runtime, host })))
    }

    /// The keys as requests see them now.
    pub fn view(&self, now: u64) -> CacheView<'_> {
        self.runtime.view(now)
    }

    /// Forgets a request that went away.
    pub fn forget(&mut self, context_id: u32) {
        self.runtime.forget(context_id);
    }

    /// A dispatched call ended.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize, now: u64) {
        self.runtime
            .on_http_call_response(token, body_size, now, &mut self.host);
    }

    /// The plugin is going away: answer every paused request rather than leave it hanging.
    pub fn abandon(&mut self) {
        self.runtime.abandon(&mut self.host);
    }

    /// The root's timer.
    pub fn on_tick(&mut self, now: u64) {
        self.runtime.on_tick(now, &mut self.host);
    }
}

/// A request needs keys: remember it, and wake the root at once to fetch them.
pub(super) fn wait(
    runtime: &SharedRuntime,
    state: &PerConfig,
    context_id: u32,
    wait: KeyWait,
    now: u64,
) {
    let Ok(mut rt) = runtime.try_borrow_mut() else {
        apply::deny_current(state, AuthnStatus::JwksFetchFail);
        return;
    };
    let ProxyJwks { runtime, host } = &mut *rt;
    runtime.wait(context_id, wait, now, host);
}
