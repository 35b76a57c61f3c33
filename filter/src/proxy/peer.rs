//! What Envoy knows about the request's connection, read only as far as the PeerAuthentication
//! policy needs it: nothing when no port can be STRICT, the destination port only when a
//! port's mode differs, the URI SAN only when a certificate was presented and trust domains
//! are configured.
//!
//! Encodings (proxy-wasm ABI 0.2.1 §Properties, measured on Envoy 1.40): `connection.mtls` one
//! byte (present and 0 on plaintext and on TLS without a client certificate),
//! `destination.port` an 8-byte little-endian integer, `connection.uri_san_peer_certificate`
//! the string's bytes (absent without a certificate). An absent property is "no peer
//! certificate"; any other host failure or an unexpected encoding is an error, and the request
//! is refused.

use super::host;
use crate::peer_authn::{MtlsMode, MtlsPolicy, Peer, PeerVerdict};

const MTLS: [&str; 2] = ["connection", "mtls"];
const URI_SAN: [&str; 2] = ["connection", "uri_san_peer_certificate"];
const DESTINATION_PORT: [&str; 2] = ["destination", "port"];

/// The policy's verdict on this request's connection, or why it could not be judged.
pub(super) fn verdict(policy: &MtlsPolicy) -> Result<PeerVerdict, String> {
    if !policy.may_require_mtls() {
        return Ok(PeerVerdict::Allow);
    }
    let port = if policy.depends_on_port() {
        read(&DESTINATION_PORT)?
            .map(|b| decode_port(&b))
            .transpose()?
    } else {
        None
    };
    if policy.mode_for(port) != MtlsMode::Strict {
        return Ok(PeerVerdict::Allow);
    }
    let mtls = read(&MTLS)?.map(|b| decode_bool(&b)).transpose()?;
    let uri_san = if mtls == Some(true) && policy.checks_trust_domain() {
        read(&URI_SAN)?
    } else {
        None
    };
    Ok(policy.decide(&Peer {
        mtls,
        uri_san: uri_san.as_deref(),
        port,
    }))
}

fn read(path: &[&str]) -> Result<Option<Vec<u8>>, String> {
    host::get_property(path)
        .map_err(|status| format!("cannot read {}: host returned {status}", path.join(".")))
}

/// `connection.mtls`: exactly one byte, 0 or 1.
fn decode_bool(bytes: &[u8]) -> Result<bool, String> {
    match bytes {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(format!(
            "connection.mtls is not a boolean ({} bytes)",
            bytes.len()
        )),
    }
}

/// `destination.port`: an 8-byte little-endian integer, 0–65535.
fn decode_port(bytes: &[u8]) -> Result<u32, String> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| {
        format!(
            "destination.port is not an 8-byte integer ({} bytes)",
            bytes.len()
        )
    })?;
    let port = u64::from_le_bytes(raw);
    u32::try_from(port)
        .ok()
        .filter(|p| *p <= 65535)
        .ok_or_else(|| format!("destination.port {port} is not a port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_envoys_encodings_and_refuses_others() {
        assert_eq!(decode_bool(&[0]), Ok(false));
        assert_eq!(decode_bool(&[1]), Ok(true));
        assert!(decode_bool(&[]).is_err());
        assert!(decode_bool(&[2]).is_err());
        assert!(decode_bool(&[1, 0]).is_err());
        assert_eq!(decode_port(&8080u64.to_le_bytes()), Ok(8080));
        assert_eq!(decode_port(&65535i64.to_le_bytes()), Ok(65535));
        assert!(decode_port(&65536u64.to_le_bytes()).is_err());
        assert!(decode_port(&(-1i64).to_le_bytes()).is_err());
        assert!(decode_port(&8080u32.to_le_bytes()).is_err());
    }
}
