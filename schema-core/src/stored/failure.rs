//! The last failure of a background migration, kept where every process
//! reads it: one document in the lock collection, beside the two locks.
//!
//! ```text
//! { _id: "schema_versions$failure",   // the versions collection's name, then "$failure"
//!   id: "0010_search_index",          // the background migration that failed
//!   checksum: "…",                    // of the migration as the failing binary declared it
//!   kind: "migration_failed",         // Error::kind()
//!   message: "…",                     // the error and its causes, with no document value
//!   at,                               // when, by the server's clock
//!   by: "host:pid",                   // which process
//!   in_a_row: 3,                      // failures of this id and checksum since it last changed
//!   pause_ms: 60000 }                 // the pause after the first; it doubles with each
//! ```
//!
//! It is a report, not a state: nothing waits on it but the background
//! task's pause and the waiters, and it means something only while its
//! migration, with that checksum, is not recorded. The task removes it once
//! its migration is recorded; `forget` removes it with the record.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};

/// The failure document, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FailureDocument {
    #[serde(rename = "_id")]
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) checksum: String,
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) at: DateTime,
    pub(crate) by: String,
    pub(crate) in_a_row: i64,
    /// The pause after the first failure in a row, as the failing process
    /// was configured, so that every process counts the same next attempt.
    pub(crate) pause_ms: i64,
}

/// The failure document's `_id` for the versions collection `versions`.
pub(crate) fn key(versions: &str) -> String {
    format!("{versions}$failure")
}
