//! The HTTP context: reads the request, asks the core, applies the decision.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::crypto::HostCrypto;
use super::host;
use crate::config::FilterConfig;
use crate::decision::{Decision, LocalReply};
use crate::request::Request;
use crate::request_authn::Env;

/// `HttpContext` for one request.
pub struct AuthnHttp {
    config: Option<Rc<FilterConfig>>,
    crypto: Rc<HostCrypto>,
}

impl AuthnHttp {
    pub(super) fn new(config: Option<Rc<FilterConfig>>, crypto: Rc<HostCrypto>) -> AuthnHttp {
        AuthnHttp { config, crypto }
    }

    /// Fail closed: the filter could not decide, so the request does not go through.
    fn refuse(&self, why: &str) -> Action {
        log::debug!("refusing request: {why}");
        let body = format!("mesh-authn: {why}");
        if let Err(status) =
            host::send_local_response(500, "mesh_authn_internal_error", body.as_bytes(), &[])
        {
            log::warn!("could not send a local reply: {status}");
        }
        Action::Pause
    }
}

impl Context for AuthnHttp {}

impl HttpContext for AuthnHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return self.refuse("the plugin has no valid configuration");
        };
        let authn = &config.request_authn;
        if authn.providers().is_empty() {
            return Action::Continue;
        }
        let request = match host::request_headers() {
            Ok(headers) => Request::new(headers),
            Err(status) => return self.refuse(&format!("cannot read request headers: {status}")),
        };
        let now = match host::now_unix_seconds() {
            Ok(now) => now,
            Err(status) => return self.refuse(&format!("cannot read the clock: {status}")),
        };
        let env = Env {
            now,
            crypto: &*self.crypto,
        };
        match authn.authenticate(&request, &env) {
            Decision::Allow(mutations) => {
                for name in &mutations.remove_headers {
                    if let Err(status) = host::remove_request_header(name) {
                        return self.refuse(&format!("cannot remove header {name}: {status}"));
                    }
                }
                if let Some(path) = &mutations.path {
                    if let Err(status) = host::replace_request_header(":path", path) {
                        return self.refuse(&format!("cannot rewrite :path: {status}"));
                    }
                }
                Action::Continue
            }
            Decision::Deny(status) => {
                let reply = LocalReply::for_status(status, &request);
                let headers: Vec<(&str, &[u8])> = reply
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_slice()))
                    .collect();
                if let Err(status) = host::send_local_response(
                    reply.code,
                    &reply.details,
                    reply.body.as_bytes(),
                    &headers,
                ) {
                    log::warn!("could not send a local reply: {status}");
                }
                Action::Pause
            }
        }
    }
}
