//! Envoy from `envoy/mesh-authn-mtls.yaml`: two listeners that each take plaintext and TLS
//! (client certificates validated against the test CA, not required), for PeerAuthentication.
//! The ports are chosen before start because `portLevelMtls` names them in the plugin
//! configuration; a start that loses a port to another process is retried with new ones.

use std::net::TcpListener;
use std::path::PathBuf;

use crate::certs::TestPki;
use crate::envoy::{Envoy, Options, StartError};

/// The template.
pub const TEMPLATE: &str = "mesh-authn-mtls.yaml";

/// A running mTLS Envoy and its two listener ports.
pub struct MtlsEnvoy {
    pub envoy: Envoy,
    pub port_a: u16,
    pub port_b: u16,
    dir: PathBuf,
}

impl Drop for MtlsEnvoy {
    fn drop(&mut self) {
        self.envoy.teardown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two distinct ports free right now on 127.0.0.1.
fn two_free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

impl MtlsEnvoy {
    /// Starts Envoy in front of `127.0.0.1:upstream_port`, with the plugin configuration that
    /// `plugin_config(port_a, port_b)` returns.
    pub fn start(
        pki: &TestPki,
        upstream_port: u16,
        plugin_config: impl Fn(u16, u16) -> String,
    ) -> Result<MtlsEnvoy, StartError> {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mesh-authn-pki-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let files = pki.write_server_files(&dir);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (port_a, port_b) = two_free_ports();
            let mut extra_values = files.template_values();
            extra_values.push(("PORT_A".to_owned(), port_a.to_string()));
            extra_values.push(("PORT_B".to_owned(), port_b.to_string()));
            let options = Options {
                template: TEMPLATE.to_owned(),
                extra_values,
                ..Options::default()
            };
            match Envoy::start_with(&plugin_config(port_a, port_b), upstream_port, &options) {
                Ok(envoy) => {
                    return Ok(MtlsEnvoy {
                        envoy,
                        port_a,
                        port_b,
                        dir,
                    })
                }
                // Another process took a port between the choice and Envoy's bind.
                Err(e) if attempt < 3 && e.log.contains("Address already in use") => continue,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            }
        }
    }
}
