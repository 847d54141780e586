//! What the manager's operations report, and the pure split of a plan
//! into what is pending and what is already applied.

use std::collections::HashMap;
use std::time::Duration;

use mongodb::bson::DateTime;

use crate::assess::status::{self, State};
use crate::declare::registry::Migration;
use crate::stored::record::Stored;

/// What one [`SchemaManager::apply_all`](crate::SchemaManager::apply_all) call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Ids applied by this call, in the order they ran.
    pub applied: Vec<String>,
    /// Ids of registered migrations that were already recorded, in plan
    /// order.
    pub already_applied: Vec<String>,
    /// Applied migrations whose bodies were edited since, in plan order
    /// (each also logged as a warning).
    pub drifted: Vec<String>,
    /// Recorded ids that no registered migration has (each also logged as
    /// a warning).
    pub unknown: Vec<String>,
    /// How long each migration took, by id: measured for those this call
    /// applied, as recorded for the others (absent for records written
    /// without a duration). In JSON, `durations_ms`.
    #[serde(
        rename = "durations_ms",
        serialize_with = "crate::support::json::millis_by_id"
    )]
    pub durations: HashMap<String, Duration>,
    /// Set when this call took the lock over from a process whose lease had
    /// ended, usually because it died while applying migrations.
    pub interrupted: Option<Interrupted>,
    /// Background migrations not recorded when this call returned, in
    /// order: a task of this process applies them now (see
    /// [`wait_applied`](crate::SchemaManager::wait_applied)). Empty when
    /// the manager waits for them
    /// ([`wait_for_background`](crate::SchemaManager::wait_for_background)).
    pub background: Vec<String>,
    /// Migrations declared with `transaction` that this call applied in one
    /// transaction with their fence and their record, in the order they ran.
    pub in_transaction: Vec<String>,
    /// Migrations declared with `transaction` that this call ran as plain
    /// migrations, the server running no transaction (a standalone server).
    pub without_transaction: Vec<String>,
}

/// What one [`SchemaManager::forget`](crate::SchemaManager::forget) call did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ForgetReport {
    /// Whether there was a record to remove.
    pub removed: bool,
    /// Set when taking the lock meant taking it over from a process whose
    /// lease had ended.
    pub interrupted: Option<Interrupted>,
}

/// What one [`SchemaManager::mark_applied`](crate::SchemaManager::mark_applied) call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MarkReport {
    /// The ids it recorded or whose edit it accepted, in plan order.
    pub marked: Vec<String>,
    /// Set when taking the lock meant taking it over from a process whose
    /// lease had ended.
    pub interrupted: Option<Interrupted>,
}

/// The report of a run under a lane's lock (`now`, read again under it,
/// and the takeover it made, if any) after `before`: what was read first,
/// or the report of the lane before, whose applied ids stay first, with
/// their measured durations.
pub(crate) fn after(
    before: ApplyReport,
    mut now: ApplyReport,
    interrupted: Option<Interrupted>,
) -> ApplyReport {
    now.already_applied.retain(|id| !before.applied.contains(id));
    for id in &before.applied {
        if let Some(duration) = before.durations.get(id) {
            now.durations.insert(id.clone(), *duration);
        }
    }
    let mut applied = before.applied;
    applied.append(&mut now.applied);
    now.applied = applied;
    now.interrupted = before.interrupted.or(interrupted);
    now
}

/// Splits `ordered` into the migrations `stored` lacks, in order, and a
/// report of the rest, including drifted and unknown ids.
pub(crate) fn split<'m>(ordered: &[&'m Migration], stored: &Stored) -> (Vec<&'m Migration>, ApplyReport) {
    let status = status::status(ordered, stored);
    let mut report = ApplyReport {
        drifted: status.drifted().into_iter().map(str::to_owned).collect(),
        unknown: status.unknown_ids().into_iter().map(str::to_owned).collect(),
        ..ApplyReport::default()
    };
    let mut pending = Vec::new();
    for (migration, entry) in ordered.iter().zip(&status.migrations) {
        if entry.state == State::Pending {
            pending.push(*migration);
            continue;
        }
        report.already_applied.push(entry.id.clone());
        if let Some(duration) = entry.duration {
            report.durations.insert(entry.id.clone(), duration);
        }
    }
    (pending, report)
}

/// A lease that ended without being released: its holder died or was cut
/// off while applying migrations, and this process took the lock over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Interrupted {
    /// The previous holder, as `host:pid:random`.
    pub previous_owner: String,
    /// The migration it had started, or was about to start, and had not
    /// completed, if any. It was not recorded, so it runs (again).
    pub migration: Option<String>,
    /// When its lease ended, by the server's clock.
    #[serde(serialize_with = "crate::support::json::time")]
    pub lease_ended_at: DateTime,
    /// Migrations the previous holder completed but had not recorded yet:
    /// this process recorded them without running them again.
    pub recorded: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::registry::MigrationFuture;
    use crate::stored::record::VersionRecord;
    use crate::support::location::Location;

    fn never_run(_: &mongodb::Database) -> MigrationFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    static A: Migration = Migration::__new("a", "a", &[], "aaaa", never_run, Location::__new("f", 1, "m"));
    static B: Migration = Migration::__new("b", "b", &["a"], "bbbb", never_run, Location::__new("f", 2, "m"));

    fn record(id: &str, checksum: &str, duration_ms: Option<i64>) -> VersionRecord {
        VersionRecord {
            id: id.to_owned(),
            description: None,
            applied_at: None,
            duration_ms,
            applied_by: None,
            checksum: Some(checksum.to_owned()),
            marked_applied: None,
            transaction: None,
        }
    }

    #[test]
    fn what_is_recorded_is_reported_and_the_rest_is_pending_in_order() {
        let stored = Stored {
            records: vec![record("a", "edited", Some(4)), record("gone", "x", None)],
            malformed: Vec::new(),
        };
        let (pending, report) = split(&[&A, &B], &stored);
        let pending: Vec<&str> = pending.iter().map(|migration| migration.id()).collect();
        assert_eq!(pending, ["b"]);
        assert_eq!(report.already_applied, ["a"]);
        assert_eq!(report.drifted, ["a"]);
        assert_eq!(report.unknown, ["gone"]);
        assert_eq!(report.durations.get("a"), Some(&Duration::from_millis(4)));
        assert!(report.applied.is_empty());
    }
}
