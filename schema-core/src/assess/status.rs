//! Where each migration stands: pending, applied or drifted, and the
//! records nobody declares. Pure: built from the plan and the records.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mongodb::bson::DateTime;

use crate::assess::policy::Policy;
use crate::assess::progress::{BackgroundTask, IndexBuild};
use crate::declare::registry::Migration;
use crate::stored::checkpoint::Checkpoint;
use crate::stored::record::Stored;
use crate::stored::record::VersionRecord;

/// Every migration this binary knows, in apply order, with its state, and
/// the records of migrations it does not know.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The registered migrations, in the order `apply_all` runs them.
    pub migrations: Vec<MigrationStatus>,
    /// Documents in the versions collection whose id no registered
    /// migration has: records applied by a newer version of the
    /// application or declared in a crate that is no longer linked, and
    /// documents that are not records at all (written by hand or by another
    /// tool).
    pub unknown: Vec<UnknownRecord>,
    /// The backfills of a migration under way or interrupted, from their
    /// checkpoints in the lock: by whom, how far, since when.
    pub backfills: Vec<BackfillStatus>,
    /// While something is pending, the index builds the server reports in
    /// progress on this database (`$currentOp`); empty when none runs, or
    /// when the server does not say (then their progress is unknown).
    pub index_builds: Vec<IndexBuild>,
    /// This process's background task: running, or why it stopped.
    pub background: BackgroundTask,
}

/// Where a backfill of a migration not yet complete stands, from the
/// checkpoint in the lock: [`Status::backfills`](crate::Status::backfills)
/// and [`LockStatus::backfills`](crate::LockStatus::backfills).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BackfillStatus {
    /// The migration running it.
    pub migration: String,
    /// Which backfill of the migration: its collection (or the name given
    /// with [`Backfill::name`](crate::data::Backfill::name)), with `#2`,
    /// `#3`... for later ones on the same key.
    pub key: String,
    /// The collection it walks.
    pub collection: String,
    /// Documents done.
    pub done: u64,
    /// Documents expected when it started, if known.
    pub total: Option<u64>,
    /// Batches done.
    pub batches: u64,
    /// The BSON type of the last `_id` done (`objectId`, `string`, `int`,
    /// as `$type` names it), `None` before the first batch; the next batch
    /// starts after it. Never the `_id` itself, which can be an e-mail or
    /// another natural key.
    pub last_id_type: Option<String>,
    /// How many runs sent the update of the next batch and got no answer,
    /// on a server without transactions: each may have applied it, so the
    /// next run that does it may change its documents up to this many
    /// times more than once.
    pub unanswered: u64,
    /// `host:pid` of the process that saved the checkpoint.
    pub by: String,
    /// The lock's holder now (`host:pid:random`).
    pub owner: String,
    /// When the backfill started, by the server's clock.
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub started_at: Option<DateTime>,
    /// When a checkpoint of the lock last moved, by the server's clock.
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub updated_at: Option<DateTime>,
}

impl BackfillStatus {
    /// `checkpoint` as an operator reads it, in a lock held by `owner`
    /// whose checkpoints last moved at `updated_at`.
    pub(crate) fn of(checkpoint: &Checkpoint, owner: &str, updated_at: Option<DateTime>) -> BackfillStatus {
        BackfillStatus {
            migration: checkpoint.migration.clone(),
            key: checkpoint.key.clone(),
            collection: checkpoint.collection.clone(),
            done: checkpoint.visited,
            total: checkpoint.total,
            batches: checkpoint.batches,
            last_id_type: checkpoint
                .position
                .as_ref()
                .filter(|_| checkpoint.batches > 0)
                .map(|last| crate::stored::checkpoint::bson_type(last).to_owned()),
            unanswered: checkpoint.unanswered,
            by: checkpoint.by.clone(),
            owner: owner.to_owned(),
            started_at: checkpoint.started_at,
            updated_at,
        }
    }
}

/// Who holds the schema lock, as
/// [`SchemaManager::lock_status`](crate::SchemaManager::lock_status) reads
/// it. Times are the server's; in JSON they are RFC 3339 strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LockStatus {
    /// The holder, as `host:pid:random`, new for every acquisition.
    pub owner: String,
    /// The holder's host name.
    pub host: Option<String>,
    /// The holder's process id.
    pub pid: Option<i64>,
    /// When it took the lock.
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub since: Option<DateTime>,
    /// The migration it is applying, or about to apply.
    pub running: Option<String>,
    /// When it last renewed its lease.
    #[serde(serialize_with = "crate::support::json::time")]
    pub renewed_at: DateTime,
    /// When its lease ends unless renewed.
    #[serde(serialize_with = "crate::support::json::time")]
    pub lease_ends_at: DateTime,
    /// Whether the lease has ended by the server's clock (or was let go):
    /// the next start takes the lock over.
    pub expired: bool,
    /// Whether its holder let it go, keeping it for the next holder: to
    /// record what is in its ledger, or to resume its backfills.
    pub released: bool,
    /// Migrations its holder completed and had not recorded yet; whoever
    /// takes the lock next records them.
    pub unrecorded: Vec<String>,
    /// Where the backfills of the migration it is running stand, from
    /// their checkpoints: whoever takes the lock next resumes them there.
    pub backfills: Vec<BackfillStatus>,
    /// How many writes its holders have made to it: the version each
    /// write moved it on from.
    pub version: i64,
}

/// Who holds each of the two locks of a versions collection (see
/// [`Lane`](crate::Lane)): [`SchemaManager::lock_status`](crate::SchemaManager::lock_status).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Locks {
    /// The lock of the migrations applied at start.
    pub start: Option<LockStatus>,
    /// The lock of the background migrations.
    pub background: Option<LockStatus>,
}

impl Locks {
    /// The lock of `lane`.
    pub fn of(&self, lane: crate::Lane) -> Option<&LockStatus> {
        match lane {
            crate::Lane::Start => self.start.as_ref(),
            crate::Lane::Background => self.background.as_ref(),
        }
    }
}

/// One registered migration and its record, if any.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The migration id.
    pub id: String,
    /// What it does.
    pub description: String,
    /// Pending, applied or drifted. In JSON, `state` with the drifted
    /// checksums beside it.
    #[serde(flatten)]
    pub state: State,
    /// When it was recorded, if it was and the record says.
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub applied_at: Option<DateTime>,
    /// How long it took, if the record says. In JSON, `duration_ms`.
    #[serde(
        rename = "duration_ms",
        serialize_with = "crate::support::json::optional_millis"
    )]
    pub duration: Option<Duration>,
    /// Which process recorded it, if the record says.
    pub applied_by: Option<String>,
    /// Whether it is declared with `transaction`.
    pub transaction: bool,
    /// For one declared with `transaction` and recorded: whether it
    /// committed in one transaction with its record (`false`: the server
    /// ran none); `None` otherwise.
    pub in_transaction: Option<bool>,
}

/// Where a migration stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// Not recorded: `apply_all` runs it.
    Pending,
    /// Recorded, with the checksum it has now or without one.
    Applied,
    /// Recorded with another checksum: its body was edited after it was
    /// applied, and the edit has not run.
    Drifted {
        /// The checksum in the record.
        #[serde(rename = "recorded_checksum")]
        recorded: String,
        /// The checksum of the body in this binary.
        #[serde(rename = "current_checksum")]
        current: String,
    },
}

/// A record whose id no registered migration has.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct UnknownRecord {
    /// The recorded id.
    pub id: String,
    /// The recorded description, if any.
    pub description: Option<String>,
    /// When it was recorded, if the record says.
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub applied_at: Option<DateTime>,
    /// What is wrong with the document, when it is not a record this crate
    /// can read (its `id` is then its `_id` as shown in messages).
    pub problem: Option<String>,
}

impl Status {
    /// The ids `apply_all` would run, in order.
    pub fn pending(&self) -> Vec<&str> {
        self.ids(|state| matches!(state, State::Pending))
    }

    /// The ids whose bodies changed after they were applied.
    pub fn drifted(&self) -> Vec<&str> {
        self.ids(|state| matches!(state, State::Drifted { .. }))
    }

    /// The ids of records no registered migration has.
    pub fn unknown_ids(&self) -> Vec<&str> {
        self.unknown.iter().map(|record| record.id.as_str()).collect()
    }

    /// Whether nothing is pending. Drift and unknown records are left to
    /// [`is_up_to_date_under`](Status::is_up_to_date_under).
    pub fn is_up_to_date(&self) -> bool {
        self.pending().is_empty()
    }

    /// Whether nothing is pending, and nothing is there that the policies
    /// make an error: drift under `on_drift` [`Policy::Fail`], unknown
    /// records under `on_unknown` [`Policy::Fail`]. This is what `status
    /// --check` checks, with the manager's policies.
    pub fn is_up_to_date_under(&self, on_drift: Policy, on_unknown: Policy) -> bool {
        self.is_up_to_date()
            && (on_drift != Policy::Fail || self.drifted().is_empty())
            && (on_unknown != Policy::Fail || self.unknown.is_empty())
    }

    fn ids(&self, wanted: impl Fn(&State) -> bool) -> Vec<&str> {
        self.migrations
            .iter()
            .filter(|migration| wanted(&migration.state))
            .map(|migration| migration.id.as_str())
            .collect()
    }
}

/// The status of `ordered` given what `stored` holds. Malformed documents
/// of registered migrations are left out: the manager refuses them first.
pub(crate) fn status(ordered: &[&Migration], stored: &Stored) -> Status {
    let by_id: HashMap<&str, &VersionRecord> = stored
        .records
        .iter()
        .map(|record| (record.id.as_str(), record))
        .collect();
    let migrations = ordered
        .iter()
        .map(|migration| {
            let record = by_id.get(migration.id()).copied();
            let state = match record {
                None => State::Pending,
                Some(VersionRecord {
                    checksum: Some(recorded),
                    ..
                }) if recorded != migration.checksum() => State::Drifted {
                    recorded: recorded.clone(),
                    current: migration.checksum().to_owned(),
                },
                Some(_) => State::Applied,
            };
            MigrationStatus {
                id: migration.id().to_owned(),
                description: migration.description().to_owned(),
                state,
                applied_at: record.and_then(|record| record.applied_at),
                duration: record
                    .and_then(|record| record.duration_ms)
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(Duration::from_millis),
                applied_by: record.and_then(|record| record.applied_by.clone()),
                transaction: migration.is_transactional(),
                in_transaction: record.and_then(|record| record.transaction),
            }
        })
        .collect();
    let known: HashSet<&str> = ordered.iter().map(|migration| migration.id()).collect();
    let unreadable = stored
        .malformed
        .iter()
        .filter(|malformed| malformed.id.as_deref().is_none_or(|id| !known.contains(id)))
        .map(|malformed| UnknownRecord {
            id: malformed.shown.clone(),
            description: None,
            applied_at: None,
            problem: Some(malformed.reason.clone()),
        });
    let unknown = stored
        .records
        .iter()
        .filter(|record| !known.contains(record.id.as_str()))
        .map(|record| UnknownRecord {
            id: record.id.clone(),
            description: record.description.clone(),
            applied_at: record.applied_at,
            problem: None,
        })
        .chain(unreadable)
        .collect();
    Status {
        migrations,
        unknown,
        backfills: Vec::new(),
        index_builds: Vec::new(),
        background: BackgroundTask::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::record::Malformed;
    use crate::support::location::Location;

    fn never_run(_: &mongodb::Database) -> crate::__private::MigrationFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    const A: Migration = Migration::__new("a", "first", &[], "aaaa", never_run, Location::__new("f", 1, "m"));
    const B: Migration = Migration::__new(
        "b",
        "second",
        &["a"],
        "bbbb",
        never_run,
        Location::__new("f", 2, "m"),
    );
    const C: Migration = Migration::__new(
        "c",
        "third",
        &["b"],
        "cccc",
        never_run,
        Location::__new("f", 3, "m"),
    );

    fn record(id: &str, checksum: Option<&str>) -> VersionRecord {
        VersionRecord {
            id: id.to_owned(),
            description: None,
            applied_at: Some(DateTime::from_millis(5)),
            duration_ms: Some(7),
            applied_by: None,
            checksum: checksum.map(str::to_owned),
            marked_applied: None,
            transaction: None,
        }
    }

    #[test]
    fn each_state_is_told_apart() {
        let status = status(
            &[&A, &B, &C],
            &stored(vec![
                record("a", Some("aaaa")),
                record("b", Some("edited")),
                record("gone", None),
            ]),
        );
        assert_eq!(status.pending(), ["c"]);
        assert_eq!(status.drifted(), ["b"]);
        assert_eq!(status.unknown_ids(), ["gone"]);
        assert_eq!(status.migrations[0].state, State::Applied);
        assert_eq!(status.migrations[0].duration, Some(Duration::from_millis(7)));
        assert_eq!(
            status.migrations[1].state,
            State::Drifted {
                recorded: "edited".into(),
                current: "bbbb".into()
            }
        );
        assert!(!status.is_up_to_date());
    }

    #[test]
    fn a_record_without_checksum_is_not_drifted() {
        let status = status(&[&A], &stored(vec![record("a", None)]));
        assert_eq!(status.migrations[0].state, State::Applied);
        assert!(status.is_up_to_date());
    }

    #[test]
    fn only_failing_policies_and_pending_migrations_make_a_status_out_of_date() {
        let status = status(
            &[&A, &B],
            &stored(vec![
                record("a", Some("edited")),
                record("b", Some("bbbb")),
                record("new", None),
            ]),
        );
        assert!(status.is_up_to_date());
        assert!(status.is_up_to_date_under(Policy::Warn, Policy::Ignore));
        assert!(!status.is_up_to_date_under(Policy::Fail, Policy::Warn));
        assert!(!status.is_up_to_date_under(Policy::Warn, Policy::Fail));
    }

    #[test]
    fn an_unreadable_document_is_unknown_unless_its_id_is_registered() {
        let mut held = stored(vec![record("a", Some("aaaa"))]);
        held.malformed = vec![
            Malformed {
                id: None,
                shown: "42".into(),
                reason: "its `_id` is an int32".into(),
            },
            Malformed {
                id: Some("b".into()),
                shown: "b".into(),
                reason: "`applied_at` should be a date".into(),
            },
        ];
        let status = status(&[&A, &B], &held);
        assert_eq!(status.unknown_ids(), ["42"]);
        assert_eq!(
            status.unknown[0].problem.as_deref(),
            Some("its `_id` is an int32")
        );
        assert_eq!(status.pending(), ["b"]);
    }

    fn stored(records: Vec<VersionRecord>) -> Stored {
        Stored {
            records,
            malformed: Vec::new(),
        }
    }
}
