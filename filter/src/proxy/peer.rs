//! Envoy's connection properties for PeerAuthentication, read with host calls and decoded.
//! Which ones a request needs is the core's decision ([`MtlsPolicy::verdict`]).
//!
//! Encodings (proxy-wasm ABI 0.2.1 §Properties, measured on Envoy 1.40): `connection.mtls` one
//! byte (present and 0 on plaintext and on TLS without a client certificate),
//! `destination.port` an 8-byte little-endian integer, `connection.uri_san_peer_certificate`
//! the string's bytes (absent without a certificate). An absent property is "no peer
//! certificate"; any other host failure or an unexpected encoding is an error, and the request
//! is refused.

use std::net::IpAddr;

use super::host;
use crate::authz::{socket_ip, Needs};
use crate::peer_authn::{ConnectionProperties, MtlsPolicy, PeerVerdict};

const MTLS: [&str; 2] = ["connection", "mtls"];
const URI_SAN: [&str; 2] = ["connection", "uri_san_peer_certificate"];
const DESTINATION_PORT: [&str; 2] = ["destination", "port"];
const SOURCE_ADDRESS: [&str; 2] = ["source", "address"];
const DESTINATION_ADDRESS: [&str; 2] = ["destination", "address"];
const SNI: [&str; 2] = ["connection", "requested_server_name"];
const DNS_SAN: [&str; 2] = ["connection", "dns_san_peer_certificate"];
const SUBJECT: [&str; 2] = ["connection", "subject_peer_certificate"];

/// The connection properties AuthorizationPolicy reads, each only when [`Needs`] asks.
#[derive(Debug, Default)]
pub(super) struct AuthzConnection {
    /// The first URI SAN, the first DNS SAN and the subject of the validated peer certificate
    /// (what Envoy 1.40 gives a Wasm filter of [`crate::authz::PeerIdentities`]).
    pub(super) peer_uri_san: Option<String>,
    pub(super) peer_dns_san: Option<String>,
    pub(super) peer_subject: Option<String>,
    /// `source.address`: Envoy's downstream remote address, which the connection manager
    /// derives from `x-forwarded-for` unless `use_remote_address` is set (measured on Envoy
    /// 1.40, see the README).
    pub(super) source_ip: Option<IpAddr>,
    pub(super) destination_ip: Option<IpAddr>,
    pub(super) destination_port: Option<u32>,
    pub(super) sni: Option<String>,
}

/// Reads what `needs` asks; a host failure or a property that is not what Envoy sends is an
/// error (the request is refused).
pub(super) fn authz_connection(needs: Needs) -> Result<AuthzConnection, String> {
    let mut out = AuthzConnection::default();
    // Without a peer certificate the SANs are absent and the subject is empty (matches no
    // value, as in Envoy RBAC).
    if needs.peer {
        out.peer_uri_san = text(&URI_SAN)?;
        out.peer_dns_san = text(&DNS_SAN)?;
        out.peer_subject = text(&SUBJECT)?.filter(|s| !s.is_empty());
    }
    if needs.remote_ip {
        out.source_ip = read(&SOURCE_ADDRESS)?.and_then(|b| socket_ip(&b));
    }
    if needs.destination_ip {
        out.destination_ip = read(&DESTINATION_ADDRESS)?.and_then(|b| socket_ip(&b));
    }
    if needs.destination_port {
        out.destination_port = read(&DESTINATION_PORT)?
            .map(|b| decode_port(&b))
            .transpose()?;
    }
    if needs.sni {
        out.sni = text(&SNI)?;
    }
    Ok(out)
}

/// The validated peer certificate's first URI SAN (`None` without a certificate).
pub(super) fn peer_uri_san() -> Result<Option<String>, String> {
    text(&URI_SAN)
}

/// The policy's verdict on this request's connection, or why it could not be judged.
pub(super) fn verdict(policy: &MtlsPolicy) -> Result<PeerVerdict, String> {
    policy.verdict(&mut Decoded(read))
}

/// A property's bytes; `None` when absent, a host failure an error naming the property.
fn read(path: &[&str]) -> Result<Option<Vec<u8>>, String> {
    host::get_property(path)
        .map_err(|status| format!("cannot read {}: host returned {status}", path.join(".")))
}

/// A string property (UTF-8, else an error).
fn text(path: &[&str]) -> Result<Option<String>, String> {
    read(path)?
        .map(|b| String::from_utf8(b).map_err(|_| format!("{} is not UTF-8", path.join("."))))
        .transpose()
}

/// The properties decoded from a raw property reader (the host, or a test's).
struct Decoded<R>(R);

impl<R> ConnectionProperties for Decoded<R>
where
    R: FnMut(&[&str]) -> Result<Option<Vec<u8>>, String>,
{
    type Error = String;

    fn mtls(&mut self) -> Result<Option<bool>, String> {
        (self.0)(&MTLS)?.map(|b| decode_bool(&b)).transpose()
    }

    fn uri_san_peer_certificate(&mut self) -> Result<Option<Vec<u8>>, String> {
        (self.0)(&URI_SAN)
    }

    fn destination_port(&mut self) -> Result<Option<u32>, String> {
        (self.0)(&DESTINATION_PORT)?
            .map(|b| decode_port(&b))
            .transpose()
    }
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
    use crate::peer_authn::{MtlsMode, MtlsMode::*, PeerDenial};
    use std::collections::BTreeMap;

    type Props = &'static [(&'static str, Result<&'static [u8], &'static str>)];

    /// The core's verdict over fake raw properties, decoded as the host's are.
    fn run(policy: &MtlsPolicy, props: Props) -> Result<PeerVerdict, String> {
        policy.verdict(&mut Decoded(|path: &[&str]| {
            let name = path.join(".");
            match props.iter().find(|(n, _)| *n == name) {
                None => Ok(None),
                Some((_, Ok(bytes))) => Ok(Some(bytes.to_vec())),
                Some((_, Err(e))) => Err(e.to_string()),
            }
        }))
    }

    fn policy(mode: MtlsMode, ports: &[(u32, MtlsMode)], td: bool) -> MtlsPolicy {
        let ports: BTreeMap<u32, MtlsMode> = ports.iter().copied().collect();
        let tds = if td {
            vec!["cluster.local".to_owned()]
        } else {
            Vec::new()
        };
        MtlsPolicy::new(mode, ports, &tds)
    }

    const PORT_9090: [u8; 8] = 9090u64.to_le_bytes();
    const SAN: &[u8] = b"spiffe://cluster.local/ns/foo/sa/bar";

    #[test]
    fn decoded_properties_reach_the_verdict() {
        let deny = Ok(PeerVerdict::Deny(PeerDenial::NoClientCertificate));
        let props: Props = &[
            ("connection.mtls", Ok(&[1])),
            ("connection.uri_san_peer_certificate", Ok(SAN)),
        ];
        assert_eq!(
            run(&policy(Strict, &[], true), props),
            Ok(PeerVerdict::Allow)
        );
        let props: Props = &[
            ("connection.mtls", Ok(&[1])),
            (
                "connection.uri_san_peer_certificate",
                Ok(b"spiffe://other/ns/a"),
            ),
        ];
        assert_eq!(
            run(&policy(Strict, &[], true), props),
            Ok(PeerVerdict::Deny(PeerDenial::ForeignTrustDomain))
        );
        assert_eq!(run(&policy(Strict, &[], false), &[]), deny);
        let props: Props = &[
            ("destination.port", Ok(&PORT_9090)),
            ("connection.mtls", Ok(&[0])),
        ];
        assert_eq!(run(&policy(Strict, &[(8080, Disable)], false), props), deny);
    }

    #[test]
    fn host_failures_and_odd_encodings_fail_closed() {
        let strict = policy(Strict, &[], true);
        for props in [
            &[(
                "connection.mtls",
                Err("cannot read connection.mtls: host returned BadArgument (2)"),
            )] as Props,
            &[("connection.mtls", Ok(&[1, 1]))],
            &[
                ("connection.mtls", Ok(&[1])),
                (
                    "connection.uri_san_peer_certificate",
                    Err("InternalFailure"),
                ),
            ],
        ] {
            assert!(run(&strict, props).is_err(), "{props:?}");
        }
        let ports = policy(Strict, &[(8080, Disable)], false);
        assert!(run(&ports, &[("destination.port", Ok(&[1, 2, 3, 4]))]).is_err());
        assert!(run(&ports, &[("destination.port", Err("NotAllowed"))]).is_err());
    }

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
