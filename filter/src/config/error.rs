//! Configuration errors: each names the field it is about, so the one log line Envoy shows is
//! enough to fix the config.

/// Why a plugin configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not YAML (JSON is YAML).
    #[error("plugin configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A field is wrong; `path` is where (`policies[0].spec.jwtRules[1].jwks`).
    #[error("{path}: {message}")]
    Field {
        /// Dotted path from the top of the plugin configuration.
        path: String,
        /// What is wrong and, where it helps, what to do.
        message: String,
    },
}

impl ConfigError {
    /// An error about the field at `path`.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            path: path.into(),
            message: message.into(),
        }
    }
}
