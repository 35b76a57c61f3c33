//! What the filter does with a request: the single type the adapter acts on.

use crate::extract::RequestState;
use crate::jwt::AuthnStatus;
use crate::remote_jwks::KeyWait;
use crate::request::Request;

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

/// A local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub code: u32,
    /// Response headers.
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// Response body.
    pub body: &'static str,
    /// Response-code details for the access log (`%RESPONSE_CODE_DETAILS%`), no spaces.
    pub details: String,
}

/// The longest path echoed in `realm`, as Envoy's `buildOriginalUri` caps it.
const MAX_REALM_PATH_BYTES: usize = 256;

impl LocalReply {
    /// Envoy `jwt_authn`'s reply for a failed request: the status message as body, 401 (403 for
    /// an audience mismatch), and `WWW-Authenticate: Bearer realm="<url>"` with
    /// `, error="invalid_token"` unless the token was missing.
    ///
    /// Unlike Envoy, the realm carries no query string: Envoy echoes the request URL, so a token
    /// sent as `?access_token=` would come back in the response header.
    pub fn for_status(status: AuthnStatus, request: &Request) -> LocalReply {
        let scheme = request
            .first("x-forwarded-proto")
            .or_else(|| request.first(":scheme"))
            .unwrap_or(b"http");
        let host = request.first(":authority").unwrap_or_default();
        let path = request
            .first("x-envoy-original-path")
            .unwrap_or_else(|| request.path());
        let path = path
            .split(|&b| b == b'?' || b == b'#')
            .next()
            .unwrap_or_default();
        let path = path.get(..MAX_REALM_PATH_BYTES).unwrap_or(path);
        let mut www = Vec::with_capacity(64 + host.len() + path.len());
        www.extend_from_slice(b"Bearer realm=\"");
        www.extend_from_slice(scheme);
        www.extend_from_slice(b"://");
        www.extend_from_slice(host);
        www.extend_from_slice(path);
        www.push(b'"');
        if !status.is_missing() {
            www.extend_from_slice(b", error=\"invalid_token\"");
        }
        LocalReply {
            code: status.http_code(),
            headers: vec![("www-authenticate", www)],
            body: status.message(),
            details: format!(
                "mesh_authn_denied{{{}}}",
                status.message().replace(' ', "_")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_matches_envoy_but_drops_the_query() {
        let req = Request::from_pairs(&[
            (":authority", "127.0.0.1:18081"),
            (":path", "/p?access_token=secret"),
            (":scheme", "http"),
        ]);
        let reply = LocalReply::for_status(AuthnStatus::JwtExpired, &req);
        assert_eq!(reply.code, 401);
        assert_eq!(reply.body, "Jwt is expired");
        assert_eq!(
            reply.headers,
            vec![(
                "www-authenticate",
                br#"Bearer realm="http://127.0.0.1:18081/p", error="invalid_token""#.to_vec()
            )]
        );
        assert_eq!(reply.details, "mesh_authn_denied{Jwt_is_expired}");
    }

    #[test]
    fn forwarded_proto_wins_and_missing_has_no_error_and_audience_is_403() {
        let req = Request::from_pairs(&[
            (":authority", "h"),
            (":path", "/"),
            (":scheme", "http"),
            ("x-forwarded-proto", "https"),
        ]);
        let reply = LocalReply::for_status(AuthnStatus::JwtMissed, &req);
        assert_eq!(reply.headers[0].1, br#"Bearer realm="https://h/""#.to_vec());
        assert_eq!(
            LocalReply::for_status(AuthnStatus::JwtAudienceNotAllowed, &req).code,
            403
        );
    }
}
