//! Logging into the host's log, tagged with the connector, its version and the
//! call. The host rate-limits each call: lines past its budget are dropped and
//! counted. Text the connector writes to stdout or stderr (including panic
//! messages) also reaches the host log.

use crate::bindings::connector::auth::log as raw;

pub use raw::Level;

/// Logs a line at the given level.
pub fn log(level: Level, message: impl AsRef<str>) {
    raw::log(level, message.as_ref());
}

/// Logs at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
