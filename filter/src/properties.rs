//! Envoy's connection properties: their names and encodings, decoded from a raw property
//! reader (the host's in `proxy/peer.rs`, a table in tests). Which ones a request needs is
//! the core's decision ([`MtlsPolicy::verdict`], [`Needs`]).
//!
//! Encodings (proxy-wasm ABI 0.2.1 §Properties, measured on Envoy 1.40): `connection.mtls` one
//! byte (present and 0 on plaintext and on TLS without a client certificate),
//! `destination.port` an 8-byte little-endian integer, `connection.uri_san_peer_certificate`
//! the string's bytes (absent without a certificate). An absent property is "no peer
//! certificate"; any other host failure or an unexpected encoding is an error, and the request
//! is refused.

use crate::authorize::Connection;
use crate::authz::{socket_ip, Needs};
use crate::peer_authn::ConnectionProperties;
#[cfg(doc)]
use crate::peer_authn::MtlsPolicy;

const MTLS: [&str; 2] = ["connection", "mtls"];
const URI_SAN: [&str; 2] = ["connection", "uri_san_peer_certificate"];
const DESTINATION_PORT: [&str; 2] = ["destination", "port"];
const SOURCE_ADDRESS: [&str; 2] = ["source", "address"];
const DESTINATION_ADDRESS: [&str; 2] = ["destination", "address"];
const SNI: [&str; 2] = ["connection", "requested_server_name"];
const DNS_SAN: [&str; 2] = ["connection", "dns_san_peer_certificate"];
const SUBJECT: [&str; 2] = ["connection", "subject_peer_certificate"];

/// What a raw property reader returns: a property's bytes, `None` when absent, a read
/// failure as an error naming the property.
pub type RawProperty = Result<Option<Vec<u8>>, String>;

/// The properties decoded from a raw property reader: a property's bytes, `None` when absent,
/// a read failure an error naming the property.
pub struct Decoded<R>(pub R);

impl<R> Decoded<R>
where
    R: FnMut(&[&str]) -> RawProperty,
{
    /// A string property (UTF-8, else an error).
    fn text(&mut self, path: &[&str]) -> Result<Option<String>, String> {
        (self.0)(path)?
            .map(|b| String::from_utf8(b).map_err(|_| format!("{} is not UTF-8", path.join("."))))
            .transpose()
    }

    /// The validated peer certificate's first URI SAN (`None` without a certificate).
    pub fn peer_uri_san(&mut self) -> Result<Option<String>, String> {
        self.text(&URI_SAN)
    }

    /// What AuthorizationPolicy reads, each property only when `needs` asks. Without a peer
    /// certificate the SANs are absent and the subject is empty (matches no value, as in Envoy
    /// RBAC).
    pub fn authz_connection(&mut self, needs: Needs) -> Result<Connection, String> {
        let mut out = Connection::default();
        if needs.peer {
            out.peer_uri_san = self.text(&URI_SAN)?;
            out.peer_dns_san = self.text(&DNS_SAN)?;
            out.peer_subject = self.text(&SUBJECT)?.filter(|s| !s.is_empty());
        }
        if needs.remote_ip {
            out.remote_ip = (self.0)(&SOURCE_ADDRESS)?.and_then(|b| socket_ip(&b));
        }
        if needs.destination_ip {
            out.destination_ip = (self.0)(&DESTINATION_ADDRESS)?.and_then(|b| socket_ip(&b));
        }
        if needs.destination_port {
            out.destination_port = self.destination_port()?;
        }
        if needs.sni {
            out.sni = self.text(&SNI)?;
        }
        Ok(out)
    }
}

impl<R> ConnectionProperties for Decoded<R>
where
    R: FnMut(&[&str]) -> RawProperty,
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
    use crate::peer_authn::{MtlsMode, MtlsMode::*, MtlsPolicy, PeerDenial, PeerVerdict};
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
    fn authorization_reads_only_what_its_policies_need() {
        let mut asked = Vec::new();
        let mut props = Decoded(|path: &[&str]| -> Result<Option<Vec<u8>>, String> {
            let name = path.join(".");
            asked.push(name.clone());
            Ok(match name.as_str() {
                "source.address" => Some(b"10.9.9.9:5000".to_vec()),
                "destination.port" => Some(PORT_9090.to_vec()),
                "connection.uri_san_peer_certificate" => Some(SAN.to_vec()),
                "connection.subject_peer_certificate" => Some(Vec::new()),
                _ => None,
            })
        });
        let none = props
            .authz_connection(Needs::default())
            .map(|c| c.remote_ip);
        assert_eq!(none, Ok(None));
        let needs = Needs {
            remote_ip: true,
            destination_port: true,
            peer: true,
            ..Needs::default()
        };
        let conn = props.authz_connection(needs);
        assert_eq!(
            conn.map(|c| (
                c.remote_ip,
                c.destination_port,
                c.peer_uri_san,
                c.peer_subject
            )),
            Ok((
                Some([10, 9, 9, 9].into()),
                Some(9090),
                Some("spiffe://cluster.local/ns/foo/sa/bar".to_owned()),
                None
            ))
        );
        assert_eq!(
            asked,
            [
                "connection.uri_san_peer_certificate",
                "connection.dns_san_peer_certificate",
                "connection.subject_peer_certificate",
                "source.address",
                "destination.port"
            ]
        );
        let mut bad_port = Decoded(|path: &[&str]| -> Result<Option<Vec<u8>>, String> {
            Ok((path.join(".") == "destination.port").then(|| vec![1, 2]))
        });
        assert!(bad_port.authz_connection(needs).is_err());
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
