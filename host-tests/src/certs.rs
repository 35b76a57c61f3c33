//! Certificates made at test time (rcgen, ECDSA P-256), independent of the filter: a CA, a
//! server certificate for `localhost`/127.0.0.1, client certificates with SPIFFE URI SANs, one
//! without any URI SAN, and one from a CA Envoy does not trust.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The SPIFFE identity of the good client (trust domain `cluster.local`).
pub const SPIFFE_GOOD: &str = "spiffe://cluster.local/ns/foo/sa/bar";
/// A client of another trust domain, signed by the same CA.
pub const SPIFFE_OTHER_TRUST_DOMAIN: &str = "spiffe://other.example/ns/foo/sa/bar";

/// A certificate and its key.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Identity {
    /// The private key for rustls.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// Everything a PeerAuthentication test needs.
pub struct TestPki {
    /// The CA Envoy trusts for client certificates and the client trusts for the server.
    pub ca: Identity,
    /// `localhost` and 127.0.0.1, serverAuth.
    pub server: Identity,
    /// URI SAN [`SPIFFE_GOOD`].
    pub client_good: Identity,
    /// URI SAN [`SPIFFE_OTHER_TRUST_DOMAIN`].
    pub client_other_trust_domain: Identity,
    /// A DNS SAN only.
    pub client_no_uri_san: Identity,
    /// URI SAN [`SPIFFE_GOOD`], signed by a CA Envoy does not trust.
    pub client_untrusted: Identity,
    /// The CA's key, for [`TestPki::client`].
    ca_issuer: Issuer<'static, KeyPair>,
}

/// The PEM files Envoy reads.
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl PkiFiles {
    /// The placeholders of `envoy/mesh-authn-mtls.yaml`.
    pub fn template_values(&self) -> Vec<(String, String)> {
        [
            ("CLIENT_CA", &self.ca_cert),
            ("SERVER_CERT", &self.server_cert),
            ("SERVER_KEY", &self.server_key),
        ]
        .into_iter()
        .map(|(k, p)| (k.to_owned(), p.to_string_lossy().into_owned()))
        .collect()
    }
}

fn new_ca(name: &str) -> (Identity, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let identity = Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    };
    (identity, Issuer::new(params, key))
}

fn leaf(
    common_name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> Identity {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

fn uri(text: &str) -> SanType {
    SanType::URI(text.try_into().unwrap())
}

fn client(uri_san: Option<&str>, issuer: &Issuer<'static, KeyPair>) -> Identity {
    let sans = match uri_san {
        Some(u) => vec![uri(u)],
        None => vec![SanType::DnsName("client.example".try_into().unwrap())],
    };
    leaf("client", sans, ExtendedKeyUsagePurpose::ClientAuth, issuer)
}

impl TestPki {
    /// Fresh keys and certificates.
    pub fn generate() -> TestPki {
        let (ca, issuer) = new_ca("mesh-authn test CA");
        let (_, untrusted) = new_ca("an untrusted CA");
        let server = leaf(
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        );
        TestPki {
            server,
            client_good: client(Some(SPIFFE_GOOD), &issuer),
            client_other_trust_domain: client(Some(SPIFFE_OTHER_TRUST_DOMAIN), &issuer),
            client_no_uri_san: client(None, &issuer),
            client_untrusted: client(Some(SPIFFE_GOOD), &untrusted),
            ca,
            ca_issuer: issuer,
        }
    }

    /// A client certificate from the trusted CA with the one URI SAN `uri_san`
    /// (`spiffe://td/ns/n/sa/s`, or any other URI).
    pub fn client(&self, uri_san: &str) -> Identity {
        client(Some(uri_san), &self.ca_issuer)
    }

    /// A client certificate from the trusted CA with the URI SANs `uri_sans`, in that order.
    pub fn client_with_uri_sans(&self, uri_sans: &[&str]) -> Identity {
        let sans = uri_sans.iter().map(|u| uri(u)).collect();
        leaf(
            "client",
            sans,
            ExtendedKeyUsagePurpose::ClientAuth,
            &self.ca_issuer,
        )
    }

    /// Writes the CA and server PEM files into `dir`.
    pub fn write_server_files(&self, dir: &Path) -> PkiFiles {
        std::fs::create_dir_all(dir).unwrap();
        let files = PkiFiles {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        std::fs::write(&files.ca_cert, &self.ca.cert_pem).unwrap();
        std::fs::write(&files.server_cert, &self.server.cert_pem).unwrap();
        std::fs::write(&files.server_key, &self.server.key_pem).unwrap();
        files
    }
}
