//! The `jwks:` section of the plugin configuration: how remote key sets are fetched.
//!
//! ```yaml
//! jwks:
//!   clusters: {"idp.example.com:443": idp}   # URI authority => Envoy cluster
//!   cacheDuration: 300s                      # defaults shown
//!   maxStale: 86400s
//!   refetchInterval: 30s
//!   retryInitialInterval: 1s
//!   retryMaxInterval: 60s
//!   allowSymmetricKeys: false                # keep `oct` keys found in fetched key sets
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::request_authn::parse_duration;
use super::{typed, ConfigError};
use crate::remote_jwks::Settings;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(feature = "cli", schemars(rename = "Jwks"))]
pub(super) struct RawJwks {
    #[serde(default)]
    clusters: BTreeMap<String, String>,
    #[serde(default)]
    cache_duration: Option<String>,
    #[serde(default)]
    max_stale: Option<String>,
    #[serde(default)]
    refetch_interval: Option<String>,
    #[serde(default)]
    retry_initial_interval: Option<String>,
    #[serde(default)]
    retry_max_interval: Option<String>,
    #[serde(default)]
    allow_symmetric_keys: bool,
}

/// Compiles the `jwks:` section (absent: all defaults).
pub(super) fn compile(section: Option<Value>) -> Result<Settings, ConfigError> {
    let raw: RawJwks = match section {
        None | Some(Value::Null) => RawJwks::default(),
        Some(v) => typed(v, "jwks")?,
    };
    let mut s = Settings::default();
    let duration = |field: &str, text: &Option<String>, default: u64, min: u64| match text {
        None => Ok(default),
        Some(t) => match parse_duration(t) {
            Some(ms) if ms >= min => Ok(ms),
            Some(_) => Err(ConfigError::field(
                format!("jwks.{field}"),
                format!("`{t}` is too short (at least {min} ms)"),
            )),
            None => Err(ConfigError::field(
                format!("jwks.{field}"),
                format!("`{t}` is not a duration such as `300s` or `0.5s`"),
            )),
        },
    };
    s.cache_duration_ms = duration(
        "cacheDuration",
        &raw.cache_duration,
        s.cache_duration_ms,
        100,
    )?;
    s.max_stale_ms = duration("maxStale", &raw.max_stale, s.max_stale_ms, 0)?;
    s.refetch_interval_ms = duration(
        "refetchInterval",
        &raw.refetch_interval,
        s.refetch_interval_ms,
        0,
    )?;
    s.retry_initial_ms = duration(
        "retryInitialInterval",
        &raw.retry_initial_interval,
        s.retry_initial_ms,
        10,
    )?;
    s.retry_max_ms = duration(
        "retryMaxInterval",
        &raw.retry_max_interval,
        s.retry_max_ms,
        10,
    )?;
    if s.retry_max_ms < s.retry_initial_ms {
        return Err(ConfigError::field(
            "jwks.retryMaxInterval",
            "shorter than retryInitialInterval",
        ));
    }
    for (authority, cluster) in &raw.clusters {
        if authority.is_empty()
            || authority.contains('/')
            || authority.contains(char::is_whitespace)
        {
            return Err(ConfigError::field(
                format!("jwks.clusters.{authority}"),
                "the key must be a URI authority, `host:port` or `host`",
            ));
        }
        if cluster.is_empty() {
            return Err(ConfigError::field(
                format!("jwks.clusters.{authority}"),
                "the cluster name must not be empty",
            ));
        }
    }
    s.clusters = raw.clusters;
    s.allow_symmetric_keys = raw.allow_symmetric_keys;
    Ok(s)
}
