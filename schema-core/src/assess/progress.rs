//! How far the long work is: index builds the server reports in progress,
//! this process's background task and the last background failure, with
//! the pause before a failing background migration is tried again. Pure:
//! built from `$currentOp`'s documents, the task's state and the failure
//! document; whether a build waits for its commit quorum is
//! [`commit_quorum`](super::commit_quorum)'s.

use std::time::Duration;

use mongodb::bson::{Bson, DateTime, Document};

use super::commit_quorum::{CommitQuorumWait, same_names};
use crate::stored::failure::FailureDocument;
use crate::support::convert;
use crate::support::error::Error;

/// An index build in progress on the manager's database, as the server's
/// `$currentOp` reports it: [`Status::index_builds`](crate::Status::index_builds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct IndexBuild {
    /// The collection being indexed.
    pub collection: String,
    /// The names of the indexes the `createIndexes` builds.
    pub indexes: Vec<String>,
    /// Units of work done in the current phase (documents scanned, keys
    /// inserted), when the server reports it.
    pub done: Option<u64>,
    /// Units of work the current phase has, when the server reports it.
    pub total: Option<u64>,
    /// The phase the server names (`scanning collection`, `inserting keys
    /// from external sorter into index`, `draining writes received during
    /// build`), when it says.
    pub phase: Option<String>,
    /// Whether the build waits for its commit quorum, as far as it is
    /// known: [`CommitQuorumWait`].
    pub commit_quorum: CommitQuorumWait,
}

impl IndexBuild {
    /// The share done, from 0 to 100, when the server reports both numbers
    /// and the total is not zero; `None` is unknown, never 0.
    pub fn percent(&self) -> Option<u64> {
        convert::percent(self.done?, self.total)
    }
}

/// What [`Status::background`](crate::Status::background) says about the
/// background migrations: this process's task, and the last failure of one
/// that is not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct BackgroundTask {
    /// Whether a task of this process is applying background migrations
    /// (or pausing after a failure, to try again).
    pub running: bool,
    /// The last failure of a background migration still not recorded, as
    /// any process noted it (or as this process met it, when it could not
    /// note it).
    pub failed: Option<BackgroundFailure>,
}

/// The last failure of a background migration, as every process reads it:
/// kept in the lock collection by the process that met it, until the
/// migration is recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BackgroundFailure {
    /// The background migration that failed.
    pub id: String,
    /// The error's kind, as [`Error::kind`](crate::Error::kind) names it.
    pub kind: String,
    /// The error's message, with its causes and no document value.
    pub message: String,
    /// When, by the server's clock; `None` for one this process met and
    /// could not note.
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub at: Option<DateTime>,
    /// Which process met it, as `host:pid`.
    pub by: String,
    /// How many times in a row the migration failed, with the same
    /// checksum.
    pub in_a_row: u32,
    /// When a background task tries it again, at the earliest: `at` plus
    /// a pause ([`SchemaManager::background_retry_pause`], a minute by
    /// default) after the first failure, doubling with each one more in a
    /// row, at most an hour.
    ///
    /// [`SchemaManager::background_retry_pause`]: crate::SchemaManager::background_retry_pause
    #[serde(serialize_with = "crate::support::json::optional_time")]
    pub next_attempt: Option<DateTime>,
}

/// The longest pause between attempts at a failing background migration,
/// unless the first is longer.
pub(crate) const LAST_RETRY_PAUSE: Duration = Duration::from_secs(60 * 60);

/// How long background tasks leave a migration alone after its
/// `in_a_row`th failure in a row: `first`, doubling each time, at most an
/// hour (or `first`, when that is longer).
pub(crate) fn retry_pause(first: Duration, in_a_row: u32) -> Duration {
    let doublings = in_a_row.saturating_sub(1).min(20);
    first
        .saturating_mul(1 << doublings)
        .min(LAST_RETRY_PAUSE.max(first))
}

impl BackgroundFailure {
    /// The failure a document notes.
    pub(crate) fn noted(failure: &FailureDocument) -> BackgroundFailure {
        let in_a_row = u32::try_from(failure.in_a_row.max(1)).unwrap_or(u32::MAX);
        let first = Duration::from_millis(u64::try_from(failure.pause_ms).unwrap_or(0));
        let pause = i64::try_from(retry_pause(first, in_a_row).as_millis()).unwrap_or(i64::MAX);
        BackgroundFailure {
            id: failure.id.clone(),
            kind: failure.kind.clone(),
            message: failure.message.clone(),
            at: Some(failure.at),
            by: failure.by.clone(),
            in_a_row,
            next_attempt: Some(DateTime::from_millis(
                failure.at.timestamp_millis().saturating_add(pause),
            )),
        }
    }

    /// The error [`wait_applied`](crate::SchemaManager::wait_applied)
    /// returns for it.
    pub(crate) fn to_error(&self) -> Error {
        Error::BackgroundFailed {
            id: self.id.clone(),
            kind: self.kind.clone(),
            message: self.message.clone(),
            by: self.by.clone(),
            in_a_row: self.in_a_row,
        }
    }
}

/// The index builds on `database` among `operations`, the documents
/// `$currentOp` returns, each once. A build is listed by the client waiting
/// for its `createIndexes` and by the server's builder (which reports the
/// progress), and through a `mongos` once on each shard (`shard`): these
/// are one build, its numbers summed over the shards. An operation whose
/// fields have other shapes is still listed, with what could be read.
pub(crate) fn index_builds(operations: &[Document], database: &str) -> Vec<IndexBuild> {
    // Each build, and for it each shard's view: the first operation seen,
    // then the numbers and phase of whichever reports them.
    let mut builds: Vec<(IndexBuild, Vec<(String, IndexBuild)>)> = Vec::new();
    for operation in operations {
        let Some(build) = index_build(operation, database) else {
            continue;
        };
        let shard = operation.get_str("shard").unwrap_or_default().to_owned();
        let same = |known: &IndexBuild| {
            known.collection == build.collection && same_names(&known.indexes, &build.indexes)
        };
        let at = match builds.iter().position(|(known, _)| same(known)) {
            Some(at) => at,
            None => {
                builds.push((build.clone(), Vec::new()));
                builds.len() - 1
            }
        };
        let shards = &mut builds[at].1;
        match shards.iter_mut().find(|(name, _)| *name == shard) {
            Some((_, seen)) => {
                seen.done = seen.done.max(build.done);
                seen.total = seen.total.max(build.total);
                seen.phase = seen.phase.take().or(build.phase);
            }
            None => shards.push((shard, build)),
        }
    }
    builds
        .into_iter()
        .map(|(mut build, shards)| {
            let sum = |field: fn(&IndexBuild) -> Option<u64>| {
                shards
                    .iter()
                    .map(|(_, seen)| field(seen))
                    .try_fold(0_u64, |sum, n| Some(sum.saturating_add(n?)))
            };
            build.done = sum(|seen| seen.done);
            build.total = sum(|seen| seen.total);
            build.phase = shards.iter().find_map(|(_, seen)| seen.phase.clone());
            build
        })
        .collect()
}

/// One `$currentOp` document as an index build on `database`, if it is one.
fn index_build(operation: &Document, database: &str) -> Option<IndexBuild> {
    let command = operation.get_document("command").ok()?;
    let collection = command.get_str("createIndexes").ok()?;
    let on_database = match command.get_str("$db") {
        Ok(name) => name == database,
        // Older servers leave `$db` out; `ns` is `db.collection`.
        Err(_) => operation
            .get_str("ns")
            .is_ok_and(|ns| ns.split_once('.').is_some_and(|(db, _)| db == database)),
    };
    if !on_database {
        return None;
    }
    let indexes = command
        .get_array("indexes")
        .map(|indexes| {
            indexes
                .iter()
                .filter_map(|index| index.as_document()?.get_str("name").ok())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let progress = operation.get_document("progress").ok();
    let number = |field: &str| progress.and_then(|progress| count(progress.get(field)?));
    Some(IndexBuild {
        collection: collection.to_owned(),
        indexes,
        done: number("done"),
        total: number("total"),
        phase: operation.get_str("msg").ok().and_then(phase),
        commit_quorum: CommitQuorumWait::Unknown,
    })
}

/// The phase a build's `msg` names: `Index Build: scanning collection
/// Index Build: scanning collection: 40/100 40%` is `scanning collection`.
fn phase(message: &str) -> Option<String> {
    const PREFIX: &str = "Index Build: ";
    let rest = message.strip_prefix(PREFIX)?;
    let end = [rest.find(" Index Build:"), rest.find(':')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    let phase = rest[..end].trim();
    (!phase.is_empty()).then(|| phase.to_owned())
}

/// A count of either integer width, or a double holding one.
fn count(value: &Bson) -> Option<u64> {
    match value {
        Bson::Double(number) if number.is_finite() && *number >= 0.0 => Some(*number as u64),
        other => convert::integer(other).and_then(|number| u64::try_from(number).ok()),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn a_build_on_this_database_is_read_with_its_progress() {
        let operations = [
            doc! {
                "op": "command",
                "ns": "app.events",
                "command": {
                    "createIndexes": "events",
                    "indexes": [{ "key": { "at": 1 }, "name": "at_1" }, { "key": { "by": 1 }, "name": "by_1" }],
                    "$db": "app",
                },
                "msg": "Index Build: scanning collection Index Build: scanning collection: 40/100 40%",
                "progress": { "done": 40_i64, "total": 100_i32 },
            },
            doc! { "command": { "createIndexes": "other", "$db": "elsewhere" }, "progress": { "done": 1, "total": 2 } },
            doc! { "command": { "find": "events", "$db": "app" } },
            doc! { "ns": "app.users", "command": { "createIndexes": "users", "indexes": "not a list" } },
        ];
        let builds = index_builds(&operations, "app");
        assert_eq!(
            builds,
            [
                IndexBuild {
                    collection: "events".into(),
                    indexes: vec!["at_1".into(), "by_1".into()],
                    done: Some(40),
                    total: Some(100),
                    phase: Some("scanning collection".into()),
                    commit_quorum: CommitQuorumWait::Unknown,
                },
                IndexBuild {
                    collection: "users".into(),
                    indexes: Vec::new(),
                    done: None,
                    total: None,
                    phase: None,
                    commit_quorum: CommitQuorumWait::Unknown,
                },
            ]
        );
        assert_eq!(builds[0].percent(), Some(40));
        assert_eq!(builds[1].percent(), None, "unknown, not zero");
    }

    #[test]
    fn a_zero_or_missing_total_is_unknown() {
        let build = |done, total| IndexBuild {
            collection: "c".into(),
            indexes: Vec::new(),
            done,
            total,
            phase: None,
            commit_quorum: CommitQuorumWait::Unknown,
        };
        assert_eq!(build(Some(0), Some(0)).percent(), None);
        assert_eq!(build(Some(5), None).percent(), None);
        assert_eq!(build(Some(7), Some(5)).percent(), Some(100));
        assert_eq!(build(Some(u64::MAX), Some(u64::MAX)).percent(), Some(100));
    }

    /// The client waiting for its `createIndexes` (no numbers) and the
    /// server's builder (with them), as a replica set member lists them.
    fn client_and_builder(shard: Option<&str>, done: i64, total: i64, message: &str) -> [Document; 2] {
        let command = doc! {
            "createIndexes": "events",
            "indexes": [{ "key": { "at": 1 }, "name": "at_1" }],
            "$db": "app",
        };
        let mut client = doc! { "op": "command", "ns": "app.events", "command": command.clone() };
        let mut builder = doc! {
            "op": "command", "ns": "app.events", "command": command,
            "msg": message, "progress": { "done": done, "total": total },
        };
        if let Some(shard) = shard {
            client.insert("shard", shard);
            builder.insert("shard", shard);
        }
        [client, builder]
    }

    #[test]
    fn a_build_listed_by_its_client_and_its_builder_and_on_each_shard_is_shown_once() {
        let scanning = "Index Build: scanning collection Index Build: scanning collection: 40/100 40%";
        let one = client_and_builder(None, 40, 100, scanning);
        let builds = index_builds(&one, "app");
        assert_eq!(builds.len(), 1, "{builds:?}");
        assert_eq!((builds[0].done, builds[0].total), (Some(40), Some(100)));
        assert_eq!(builds[0].indexes, ["at_1"]);
        assert_eq!(builds[0].commit_quorum, CommitQuorumWait::Unknown);

        // Through a mongos: each shard's client and builder.
        let mut operations = client_and_builder(Some("shard-a"), 40, 100, scanning).to_vec();
        operations.extend(client_and_builder(Some("shard-b"), 10, 50, scanning));
        let builds = index_builds(&operations, "app");
        assert_eq!(builds.len(), 1, "{builds:?}");
        assert_eq!((builds[0].done, builds[0].total), (Some(50), Some(150)));
        assert_eq!(builds[0].percent(), Some(33));
        assert_eq!(builds[0].phase.as_deref(), Some("scanning collection"));
    }

    #[test]
    fn a_draining_build_is_not_taken_for_one_waiting_for_its_quorum() {
        // The phase every build passes through, on a standalone too.
        let draining = "Index Build: draining writes received during build";
        let builds = index_builds(&client_and_builder(None, 0, 0, draining), "app");
        assert_eq!(builds.len(), 1, "{builds:?}");
        assert_eq!(
            builds[0].phase.as_deref(),
            Some("draining writes received during build")
        );
        assert_eq!(builds[0].commit_quorum, CommitQuorumWait::Unknown);
    }
}
