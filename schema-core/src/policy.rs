//! What a start does about migrations edited after they were applied
//! (drift) and records this binary does not declare (unknown records).

/// How [`SchemaManager`](crate::SchemaManager) treats drift or unknown
/// records, set with
/// [`on_drift`](crate::SchemaManager::on_drift) and
/// [`on_unknown`](crate::SchemaManager::on_unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Say nothing; the [`ApplyReport`](crate::ApplyReport) still lists
    /// them.
    Ignore,
    /// Log a warning for each and go on (the default).
    #[default]
    Warn,
    /// Refuse to start: an error before anything runs, and `status --check`
    /// fails.
    Fail,
}
