//! A TLS client (rustls) for one HTTP/1.1 request to Envoy on 127.0.0.1, with or without a
//! client certificate. It tells a response apart from a connection Envoy refused.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::certs::Identity;
use crate::http::{self, Response};

/// What came back.
#[derive(Debug)]
pub enum Outcome {
    /// A whole HTTP response.
    Response(Response),
    /// The TLS handshake, or the connection, failed before any response: what the client saw.
    /// Under TLS 1.3 a refused client certificate shows only on the first read.
    Refused(String),
}

fn config(ca: &CertificateDer<'static>, client: Option<&Identity>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert_der.clone()], id.key_der())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// `GET path` over TLS to `127.0.0.1:port` (server name `localhost`, verified against `ca`),
/// presenting `client` if given.
pub fn get(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    ca: &CertificateDer<'static>,
    client: Option<&Identity>,
) -> Outcome {
    request(port, "GET", path, headers, ca, client)
}

/// [`get`] with any method; `Host: localhost:<port>` unless `headers` has a `host`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    ca: &CertificateDer<'static>,
    client: Option<&Identity>,
) -> Outcome {
    let conn = ClientConnection::new(
        config(ca, client),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(http::TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(http::TIMEOUT)).unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            return Outcome::Refused(format!("handshake: {e}"));
        }
    }
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: localhost:{port}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    if let Err(e) = tls.write_all(req.as_bytes()).and_then(|()| tls.flush()) {
        return Outcome::Refused(format!("write: {e}"));
    }
    let outcome = match http::read_and_parse(&mut tls) {
        Ok(r) => Outcome::Response(r),
        Err(e) => Outcome::Refused(format!("read: {e}")),
    };
    let _ = tls.sock.shutdown(Shutdown::Both);
    outcome
}
