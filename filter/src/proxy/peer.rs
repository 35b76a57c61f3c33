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
    verdict_with(policy, |path| {
        host::get_property(path)
            .map_err(|status| format!("cannot read {}: host returned {status}", path.join(".")))
    })
}

/// [`verdict`] over any property reader (the host, or a test's).
fn verdict_with(
    policy: &MtlsPolicy,
    mut read: impl FnMut(&[&str]) -> Result<Option<Vec<u8>>, String>,
) -> Result<PeerVerdict, String> {
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
    use crate::peer_authn::{MtlsMode::*, PeerDenial};
    use std::collections::BTreeMap;

    type Props = &'static [(&'static str, Result<&'static [u8], &'static str>)];

    /// Runs the adapter's logic over fake properties; returns the verdict and the paths read.
    fn run(policy: &MtlsPolicy, props: Props) -> (Result<PeerVerdict, String>, Vec<String>) {
        let mut reads = Vec::new();
        let verdict = verdict_with(policy, |path| {
            let name = path.join(".");
            reads.push(name.clone());
            match props.iter().find(|(n, _)| *n == name) {
                None => Ok(None),
                Some((_, Ok(bytes))) => Ok(Some(bytes.to_vec())),
                Some((_, Err(e))) => Err(e.to_string()),
            }
        });
        (verdict, reads)
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
    const PORT_8080: [u8; 8] = 8080u64.to_le_bytes();
    const SAN: &[u8] = b"spiffe://cluster.local/ns/foo/sa/bar";

    #[test]
    fn reads_only_what_the_policy_needs() {
        let deny = Ok(PeerVerdict::Deny(PeerDenial::NoClientCertificate));
        let allow = Ok(PeerVerdict::Allow);
        // PERMISSIVE or DISABLE everywhere: no host call at all.
        let (v, reads) = run(&policy(Permissive, &[(1, Disable)], true), &[]);
        assert_eq!((v, reads.len()), (allow.clone(), 0));
        // STRICT, no ports, no trust domain: connection.mtls only.
        let (v, reads) = run(
            &policy(Strict, &[], false),
            &[("connection.mtls", Ok(&[1]))],
        );
        assert_eq!(
            (v, reads),
            (allow.clone(), vec!["connection.mtls".to_owned()])
        );
        // Absent connection.mtls: no certificate.
        let (v, _) = run(&policy(Strict, &[], false), &[]);
        assert_eq!(v, deny.clone());
        // Trust domain: the URI SAN only once a certificate was presented.
        let (v, reads) = run(&policy(Strict, &[], true), &[("connection.mtls", Ok(&[0]))]);
        assert_eq!((v, reads.len()), (deny.clone(), 1));
        let props: Props = &[
            ("connection.mtls", Ok(&[1])),
            ("connection.uri_san_peer_certificate", Ok(SAN)),
        ];
        let (v, reads) = run(&policy(Strict, &[], true), props);
        assert_eq!((v, reads.len()), (allow.clone(), 2));
        // Port-level: the port first, and nothing more on a port that is not STRICT.
        let ports = policy(Strict, &[(8080, Disable)], false);
        let (v, reads) = run(&ports, &[("destination.port", Ok(&PORT_8080))]);
        assert_eq!((v, reads), (allow, vec!["destination.port".to_owned()]));
        let props: Props = &[
            ("destination.port", Ok(&PORT_9090)),
            ("connection.mtls", Ok(&[0])),
        ];
        let (v, reads) = run(&ports, props);
        assert_eq!((v, reads.len()), (deny.clone(), 2));
        // Unknown port where it matters: the strictest mode.
        let (v, _) = run(&policy(Disable, &[(8080, Strict)], false), &[]);
        assert_eq!(v, deny);
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
            assert!(run(&strict, props).0.is_err(), "{props:?}");
        }
        let ports = policy(Strict, &[(8080, Disable)], false);
        assert!(run(&ports, &[("destination.port", Ok(&[1, 2, 3, 4]))])
            .0
            .is_err());
        assert!(run(&ports, &[("destination.port", Err("NotAllowed"))])
            .0
            .is_err());
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
