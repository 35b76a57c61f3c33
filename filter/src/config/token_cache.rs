//! The `tokenCache:` section of the plugin configuration: the verified-token cache's bounds.
//!
//! ```yaml
//! tokenCache:
//!   maxEntries: 1000      # defaults shown; 0 turns the cache off
//!   maxBytes: 4194304
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::{typed, ConfigError};
use crate::token_cache::{Settings, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES};

#[derive(Deserialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(feature = "cli", schemars(rename = "TokenCache"))]
pub(super) struct RawSettings {
    max_entries: Option<usize>,
    max_bytes: Option<usize>,
}

/// Compiles the `tokenCache:` section (absent: the defaults).
pub(super) fn compile(section: Option<Value>) -> Result<Settings, ConfigError> {
    let Some(raw) = section else {
        return Ok(Settings::default());
    };
    let raw: RawSettings = typed(raw, "tokenCache")?;
    Ok(Settings {
        max_entries: raw.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES),
        max_bytes: raw.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
    })
}
