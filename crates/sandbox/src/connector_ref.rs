//! How errors, logs and the audit name a connector version.

/// A connector version, as errors and logs name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectorRef {
    /// The manifest id.
    pub id: String,
    /// The manifest version.
    pub version: String,
}

impl std::fmt::Display for ConnectorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}
