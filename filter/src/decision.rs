//! What the filter does with a request: the verdict and the changes the adapter applies
//! (the replies it sends for a denial are [`crate::local_reply`]'s).

use crate::extract::RequestState;
use crate::jwt::AuthnStatus;
use crate::remote_jwks::KeyWait;

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through after these changes.
    Allow(Mutations),
    /// Answer locally with Envoy's reply for this status.
    Deny(AuthnStatus),
    /// A token needs remote keys that are being fetched: pause, decide again when they are
    /// there (or answer `Jwks remote fetch is failed` after the rule's timeout).
    NeedKeys(KeyWait),
}

/// Changes to the request before it goes upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Headers to remove (verified tokens not forwarded).
    pub remove_headers: Vec<String>,
    /// A new `:path` (a verified token removed from the query).
    pub path: Option<Vec<u8>>,
    /// Headers to set to one value, after the removals (`cookie` without a verified token's
    /// cookie).
    pub set_headers: Vec<(String, Vec<u8>)>,
    /// Headers to append, after the removals and sets (`outputPayloadToHeader`,
    /// `outputClaimToHeaders`; one value per verified token, as Envoy adds them).
    pub add_headers: Vec<(String, Vec<u8>)>,
}

impl Decision {
    pub(crate) fn allow(state: &RequestState<'_>) -> Decision {
        let mut remove_headers = state.removed_headers().to_vec();
        // Only output headers the client actually sent need a host call to go.
        for name in state.sanitized_headers() {
            if state.request_has(name) && !remove_headers.contains(name) {
                remove_headers.push(name.clone());
            }
        }
        let mut set_headers = Vec::new();
        match state.rewritten_cookie() {
            None => {}
            Some(Some(cookie)) => set_headers.push(("cookie".to_owned(), cookie)),
            Some(None) => remove_headers.push("cookie".to_owned()),
        }
        Decision::Allow(Mutations {
            remove_headers,
            path: state.rewritten_path(),
            set_headers,
            add_headers: state.added_headers().to_vec(),
        })
    }
}
