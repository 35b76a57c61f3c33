//! What the filter does with a request: the verdict and the changes the adapter applies
//! (the replies it sends for a denial are [`crate::local_reply`]'s).

use crate::extract::{Names, RequestState};
use crate::jwt::AuthnStatus;
use crate::remote_jwks::KeyWait;
use crate::request::Request;

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'c> {
    /// Let it through after these changes.
    Allow(Mutations<'c>),
    /// Answer locally with Envoy's reply for this status.
    Deny(AuthnStatus),
    /// A token needs remote keys that are being fetched: pause, decide again when they are
    /// there (or answer `Jwks remote fetch is failed` after the rule's timeout).
    NeedKeys(KeyWait),
}

/// Changes to the request before it goes upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutations<'c> {
    /// Headers to remove (verified tokens not forwarded, output headers the client sent, a
    /// `cookie` left empty), named as the configuration names them.
    pub remove_headers: Names<'c>,
    /// A new `:path` (a verified token removed from the query).
    pub path: Option<Vec<u8>>,
    /// Headers to set to one value, after the removals (`cookie` without a verified token's
    /// cookie).
    pub set_headers: Vec<(String, Vec<u8>)>,
    /// Headers to append, after the removals and sets (`outputPayloadToHeader`,
    /// `outputClaimToHeaders`; one value per verified token, as Envoy adds them).
    pub add_headers: Vec<(String, Vec<u8>)>,
}

impl<'c> Decision<'c> {
    /// The request goes on with what the rules took out of it and added (the state's lists
    /// are moved, not copied: this runs on every allowed request).
    pub(crate) fn allow(state: RequestState<'_, 'c>) -> Decision<'c> {
        let path = state.rewritten_path();
        let cookie = state.rewritten_cookie();
        // Only output headers the client actually sent need a host call to go.
        let mut sent = Names::new();
        for &name in state.sanitized_headers() {
            if state.request_has(name) && !state.removed_headers().contains(&name) {
                sent.push(name);
            }
        }
        let (mut remove_headers, add_headers) = state.into_removed_and_added();
        if !sent.is_empty() {
            remove_headers.extend(sent);
        }
        let mut set_headers = Vec::new();
        match cookie {
            None => {}
            Some(Some(cookie)) => set_headers.push(("cookie".to_owned(), cookie)),
            Some(None) => remove_headers.push("cookie"),
        }
        Decision::Allow(Mutations {
            remove_headers,
            path,
            set_headers,
            add_headers,
        })
    }
}

impl Mutations<'_> {
    /// Whether the request goes upstream unchanged.
    pub fn is_empty(&self) -> bool {
        self.remove_headers.is_empty()
            && self.path.is_none()
            && self.set_headers.is_empty()
            && self.add_headers.is_empty()
    }

    /// The request as the upstream will see it after these changes, in the adapter's order:
    /// removals, the new `:path`, sets (the first value replaced in place, later ones removed,
    /// appended when absent), then additions. AuthorizationPolicy reads this one, as Envoy's
    /// RBAC filter reads the headers `jwt_authn` left.
    pub fn apply_to(&self, request: &Request) -> Request {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = request
            .pairs()
            .filter(|(n, _)| !self.remove_headers.iter().any(|r| r.as_bytes() == *n))
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        let mut set = |name: &[u8], value: &[u8]| {
            let mut seen = false;
            pairs.retain_mut(|(n, v)| {
                if n.as_slice() != name {
                    return true;
                }
                if seen {
                    return false;
                }
                seen = true;
                *v = value.to_vec();
                true
            });
            if !seen {
                pairs.push((name.to_vec(), value.to_vec()));
            }
        };
        if let Some(path) = &self.path {
            set(b":path", path);
        }
        for (name, value) in &self.set_headers {
            set(name.as_bytes(), value);
        }
        for (name, value) in &self.add_headers {
            pairs.push((name.as_bytes().to_vec(), value.clone()));
        }
        Request::new(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_request_has_the_removals_sets_and_additions() {
        let request = Request::from_pairs(&[
            (":path", "/a?access_token=t"),
            ("authorization", "Bearer t"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-jwt-sub", "forged"),
        ]);
        let m = Mutations {
            remove_headers: smallvec::smallvec!["authorization", "x-jwt-sub"],
            path: Some(b"/a".to_vec()),
            set_headers: vec![("cookie".into(), b"b=2".to_vec())],
            add_headers: vec![("x-jwt-sub".into(), b"alice".to_vec())],
        };
        let got = m.apply_to(&request);
        let pairs: Vec<(&[u8], &[u8])> = got.pairs().collect();
        assert_eq!(
            pairs,
            [
                (&b":path"[..], &b"/a"[..]),
                (b"cookie", b"b=2"),
                (b"x-jwt-sub", b"alice"),
            ]
        );
        assert!(Mutations::default().is_empty());
        assert!(!m.is_empty());
    }
}
