//! The proxy-wasm ABI's values as the adapter reads and writes them, kept host-free so they are
//! tested natively: call statuses, buffer/map/stream/metric type numbers, log levels, and
//! property paths. (The map encoding of
//! headers and map-valued properties is [`crate::request`]'s.)

/// A proxy-wasm status other than `Ok`, as the host returned it (an unknown value stays a
/// number: it cannot become an invalid enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus(pub u32);

impl HostStatus {
    /// The key, property, header or foreign function does not exist.
    pub const NOT_FOUND: HostStatus = HostStatus(1);
    /// The host's bytes could not be read as what was asked.
    pub const SERIALIZATION_FAILURE: HostStatus = HostStatus(3);
    /// `set_shared_data` refused the write: the value changed since it was read.
    pub const CAS_MISMATCH: HostStatus = HostStatus(8);

    /// A call's returned status: `Ok` (0) or the status.
    pub const fn check(status: u32) -> Result<(), HostStatus> {
        match status {
            0 => Ok(()),
            other => Err(HostStatus(other)),
        }
    }
}

impl core::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            _ => "unknown status",
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// `proxy_get_buffer_bytes` buffer types.
pub mod buffer {
    /// A dispatched call's response body.
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    /// The plugin configuration.
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// Header map types.
pub mod map {
    /// The request headers.
    pub const HTTP_REQUEST_HEADERS: u32 = 0;
    /// A dispatched call's response headers.
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
}

/// What a stream callback returns: go on to the next filter, or stop the request here (it
/// waits, or was answered locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `Continue` (0).
    Continue = 0,
    /// `Pause` (1, Envoy's `StopIteration`).
    Pause = 1,
}

/// `proxy_continue_stream`'s stream type for the request.
pub const STREAM_HTTP_REQUEST: u32 = 0;
/// `proxy_define_metric`'s metric type for a counter.
pub const METRIC_COUNTER: u32 = 0;

/// proxy-wasm log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// The host's level number; anything above `Error` is `Critical`.
    pub const fn from_abi(level: u32) -> LogLevel {
        match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }

    /// The level a `log` record is written at.
    pub const fn of(level: log::Level) -> LogLevel {
        match level {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Trace => LogLevel::Trace,
        }
    }

    /// The `log` filter that follows the host's level (`None`: the host did not say, Info),
    /// so debug lines cost nothing unless the host wants them.
    pub const fn filter(host: Option<LogLevel>) -> log::LevelFilter {
        match host {
            Some(LogLevel::Trace) => log::LevelFilter::Trace,
            Some(LogLevel::Debug) => log::LevelFilter::Debug,
            Some(LogLevel::Info) | None => log::LevelFilter::Info,
            Some(LogLevel::Warn) => log::LevelFilter::Warn,
            Some(LogLevel::Error) | Some(LogLevel::Critical) => log::LevelFilter::Error,
        }
    }
}

/// The ABI's property path: the segments joined by NUL bytes.
pub fn property_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.iter().map(|p| p.len() + 1).sum());
    for (i, segment) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(segment.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths_join_segments_with_nul() {
        assert_eq!(property_path(&["connection", "mtls"]), b"connection\0mtls");
        assert_eq!(
            property_path(&["destination", "port"]),
            b"destination\0port"
        );
        assert_eq!(property_path(&["plugin_root_id"]), b"plugin_root_id");
    }

    #[test]
    fn log_levels_follow_the_host() {
        // proxy-wasm ABI 0.2.1: trace 0 … critical 5.
        let filters = [
            (0, log::LevelFilter::Trace),
            (1, log::LevelFilter::Debug),
            (2, log::LevelFilter::Info),
            (3, log::LevelFilter::Warn),
            (4, log::LevelFilter::Error),
            (5, log::LevelFilter::Error),
            (99, log::LevelFilter::Error),
        ];
        for (abi, filter) in filters {
            assert_eq!(
                LogLevel::filter(Some(LogLevel::from_abi(abi))),
                filter,
                "{abi}"
            );
        }
        assert_eq!(LogLevel::filter(None), log::LevelFilter::Info);
        assert_eq!(LogLevel::of(log::Level::Warn) as u32, 3);
        assert_eq!(HostStatus(8).to_string(), "CasMismatch (8)");
        assert_eq!(HostStatus::check(0), Ok(()));
        assert_eq!(HostStatus::check(8), Err(HostStatus::CAS_MISMATCH));
        assert_eq!(HostStatus(42).to_string(), "unknown status (42)");
    }
}
