//! Envoy whose listener comes from LDS on a file (`envoy/mesh-authn-lds.yaml`), for hot config
//! updates: the listener is the `ingress` listener of `envoy/mesh-authn.yaml` with a given
//! plugin configuration, written as a DiscoveryResponse and replaced by an atomic rename.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::envoy::{render_config, Envoy, Options, StartError};

/// The bootstrap template.
pub const TEMPLATE: &str = "mesh-authn-lds.yaml";
/// The listener file inside the LDS directory.
pub const LISTENERS_FILE: &str = "listeners.yaml";

/// The LDS DiscoveryResponse holding `envoy/mesh-authn.yaml`'s listener, with the filter
/// configured by `plugin_config_yaml`, in front of `127.0.0.1:upstream_port`.
pub fn listeners_response(plugin_config_yaml: &str, upstream_port: u16, version: u32) -> String {
    let bootstrap: Value =
        serde_yaml_ng::from_str(&render_config(plugin_config_yaml, upstream_port))
            .expect("envoy/mesh-authn.yaml renders to YAML");
    let mut listener = bootstrap["static_resources"]["listeners"][0].clone();
    listener["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    json!({"version_info": version.to_string(), "resources": [listener]}).to_string()
}

/// Writes `contents` to `dir/listeners.yaml` as Envoy's file watcher wants it: a new file
/// beside it, renamed over the old one (one move event, never a half-written file).
pub fn replace_listeners(dir: &Path, contents: &str) {
    let tmp = dir.join(format!(".{LISTENERS_FILE}.tmp"));
    std::fs::write(&tmp, contents).expect("write the new listener file");
    std::fs::rename(&tmp, dir.join(LISTENERS_FILE)).expect("rename it into place");
}

/// A running Envoy fed by LDS from a file; the directory is removed on drop.
pub struct LdsEnvoy {
    /// The Envoy.
    pub envoy: Envoy,
    dir: PathBuf,
    upstream_port: u16,
    version: u32,
}

impl LdsEnvoy {
    /// Starts Envoy with the listener configured by `plugin_config_yaml`.
    pub fn start(
        plugin_config_yaml: &str,
        upstream_port: u16,
        options: &Options,
    ) -> Result<LdsEnvoy, StartError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("mesh-authn-lds-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the LDS directory");
        replace_listeners(
            &dir,
            &listeners_response(plugin_config_yaml, upstream_port, 1),
        );
        let upstream = upstream_port.to_string();
        let lds_dir = dir.to_string_lossy().into_owned();
        let bootstrap = crate::render_envoy_template(
            TEMPLATE,
            &[
                ("ADMIN_PORT", "0"),
                ("UPSTREAM_PORT", &upstream),
                ("LDS_DIR", &lds_dir),
            ],
        );
        let envoy = match Envoy::start_config(&bootstrap, options) {
            Ok(envoy) => envoy,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(LdsEnvoy {
            envoy,
            dir,
            upstream_port,
            version: 1,
        })
    }

    /// Replaces the listener with one configured by `plugin_config_yaml`, and waits until
    /// Envoy has taken the update or rejected it: `true` when it took it (and the new listener
    /// is no longer warming), `false` when it rejected it.
    pub fn update(&mut self, plugin_config_yaml: &str) -> bool {
        let success = self.stat("listener_manager.lds.update_success");
        let rejected = self.stat("listener_manager.lds.update_rejected");
        self.version += 1;
        replace_listeners(
            &self.dir,
            &listeners_response(plugin_config_yaml, self.upstream_port, self.version),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                Instant::now() < deadline,
                "Envoy neither took nor rejected LDS version {}:\n{}",
                self.version,
                self.envoy.log()
            );
            if self.stat("listener_manager.lds.update_rejected") > rejected {
                return false;
            }
            if self.stat("listener_manager.lds.update_success") > success
                && self.stat("listener_manager.total_listeners_warming") == 0
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stat(&self, name: &str) -> u64 {
        self.envoy.stat(name).unwrap_or(0)
    }
}

impl Drop for LdsEnvoy {
    fn drop(&mut self) {
        self.envoy.teardown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
