//! How far the long work is: index builds the server reports in progress,
//! and this process's background task. Pure: built from `$currentOp`'s
//! documents and the task's state.

use mongodb::bson::{Bson, Document};

use crate::support::convert;

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
}

impl IndexBuild {
    /// The share done, from 0 to 100, when the server reports both numbers
    /// and the total is not zero; `None` is unknown, never 0.
    pub fn percent(&self) -> Option<u64> {
        convert::percent(self.done?, self.total)
    }
}

/// What [`Status::background`](crate::Status::background) says about this
/// process's background task.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct BackgroundTask {
    /// Whether a task of this process is applying background migrations.
    pub running: bool,
    /// Set when the last task stopped before everything was recorded.
    pub failed: Option<BackgroundFailure>,
}

/// Why this process's background task stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BackgroundFailure {
    /// The first background migration that is not recorded.
    pub id: String,
    /// The error's kind, as [`Error::kind`](crate::Error::kind) names it.
    pub kind: &'static str,
    /// The error's message, with its causes.
    pub message: String,
}

/// The `createIndexes` operations on `database` among `operations`, the
/// documents `$currentOp` returns. An operation whose fields have other
/// shapes is still listed, with what could be read.
pub(crate) fn index_builds(operations: &[Document], database: &str) -> Vec<IndexBuild> {
    operations
        .iter()
        .filter_map(|operation| {
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
            })
        })
        .collect()
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
                },
                IndexBuild {
                    collection: "users".into(),
                    indexes: Vec::new(),
                    done: None,
                    total: None,
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
        };
        assert_eq!(build(Some(0), Some(0)).percent(), None);
        assert_eq!(build(Some(5), None).percent(), None);
        assert_eq!(build(Some(7), Some(5)).percent(), Some(100));
        assert_eq!(build(Some(u64::MAX), Some(u64::MAX)).percent(), Some(100));
    }
}
