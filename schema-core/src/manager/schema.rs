//! The declared schema and a live database held against it: taking a
//! snapshot (the set applied to a scratch database while the helpers are
//! listened to) and verifying a database against one (read-only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::Database;
use mongodb::bson::Document;

use super::SchemaManager;
use crate::assess::drift::{self, Drift};
use crate::assess::policy::Policy;
use crate::declare::capture::{Capture, Declared};
use crate::declare::registry::Migration;
use crate::declare::snapshot::Snapshot;
use crate::live;
use crate::support::error::{Error, ServerError};
use crate::support::faults::within;

impl SchemaManager {
    /// Has [`snapshot`](SchemaManager::snapshot) apply the set to
    /// `scratch` instead of a new database of its own: for a user who may
    /// not create or drop databases (`readWrite` on certain databases only,
    /// as hosted MongoDB often grants). `scratch` may be of another client.
    ///
    /// It must have no collection when the snapshot starts, since the
    /// migrations would change what is there; the snapshot refuses
    /// otherwise. Afterwards it drops the collections the snapshot created
    /// (all that are there: it was empty), not the database. Two snapshots
    /// must not share it at once: the second one would find the first's
    /// records and apply nothing; that is detected and refused.
    ///
    /// ```no_run
    /// # async fn take(manager: schema_core::SchemaManager) -> Result<(), schema_core::Error> {
    /// let scratch = manager.database().client().database("app_schema_scratch");
    /// let snapshot = manager.snapshot_database(scratch).snapshot().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn snapshot_database(mut self, scratch: Database) -> SchemaManager {
        self.snapshot_database = Some(scratch);
        self
    }

    /// The schema this manager's migrations declare: what their calls to
    /// [`ensure_indexes`](crate::indexes::ensure_indexes),
    /// [`set_validator`](crate::set_validator),
    /// [`drop_index`](crate::indexes::drop_index) and the
    /// [`snapshot::declare_*`](crate::snapshot) functions declare, folded
    /// in apply order.
    ///
    /// The set is applied, as [`apply_all`](SchemaManager::apply_all)
    /// would, to a new, empty scratch database on the same server (named
    /// after this one with `_snapshot_` and a random suffix), or to the one
    /// given to [`snapshot_database`](SchemaManager::snapshot_database),
    /// and the helpers' calls are noted as they are made, not read back
    /// from the server: servers differ in what they list. The scratch
    /// database is dropped afterwards (a given one emptied of what the
    /// snapshot created), also when a migration fails, each drop given up
    /// on after a third of the lease; only if the returned future is
    /// dropped half way is it left behind. This manager's own database is
    /// not touched.
    ///
    /// # Errors
    ///
    /// - Those of [`apply_all`](SchemaManager::apply_all) applying the set
    ///   to the scratch database (a failing migration is
    ///   [`Error::MigrationFailed`]);
    /// - [`Error::SnapshotUnauthorized`] when the server does not let this
    ///   user use the scratch database (a user with rights on certain
    ///   databases only): give it one with
    ///   [`snapshot_database`](SchemaManager::snapshot_database);
    /// - [`Error::Configuration`] when the given scratch database is this
    ///   manager's, has collections, or was used by another snapshot at the
    ///   same time;
    /// - [`Error::Database`] or [`Error::ServerTimeout`] when the scratch
    ///   database cannot be dropped or emptied.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        let groups = groups_of(&self.ordered()?);
        Ok(Snapshot::fold(groups, self.learn().await?))
    }

    /// What the set declares, heard while it is applied to a scratch
    /// database (see [`snapshot`](SchemaManager::snapshot)), in apply
    /// order, each migration's declarations after its
    /// [`Declared::Began`](crate::declare::capture::Declared::Began).
    pub(super) async fn learn(&self) -> Result<Vec<Declared>, Error> {
        let scratch = match &self.snapshot_database {
            Some(given) => Scratch::Given(given.clone()),
            None => Scratch::Own(self.db.client().database(&scratch_name(self.db.name()))),
        };
        self.learn_in(scratch).await
    }

    /// [`learn`](SchemaManager::learn) in `scratch`, which may be of
    /// another client (one that listens to the commands it sends).
    pub(super) async fn learn_in(&self, scratch: Scratch) -> Result<Vec<Declared>, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        let bound = self.lock_lease / 3;
        if let Scratch::Given(given) = &scratch {
            check_given(given, &self.db, bound).await?;
        }
        // Everything applied before it returns, and what it learns kept
        // apart from this manager's own database.
        let mut manager = self.clone().wait_for_background(true);
        manager.db = scratch.database().clone();
        manager.observers.clear();
        manager.background = Default::default();
        manager.snapshot_database = None;
        manager.preflight_at_start = Policy::Ignore;
        let capture = Capture::start(scratch.database().name());
        // Boxed: a start that runs preflight comes back here.
        let applied = Box::pin(manager.apply_all()).await;
        let declared = capture.finish();
        let cleaned = scratch.clean(bound).await;
        let name = scratch.database().name();
        let report = applied.map_err(|error| unauthorized(error, name))?;
        cleaned.map_err(|error| unauthorized(error, name))?;
        if report.applied.len() != ordered.len() {
            return Err(Error::Configuration {
                reason: format!(
                    "{} of the {} migrations were applied to the scratch database `{name}`: another \
                     snapshot used it at the same time; give each snapshot a database of its own",
                    report.applied.len(),
                    ordered.len()
                ),
            });
        }
        Ok(declared)
    }

    /// How this manager's database differs from `snapshot`: the indexes
    /// and validators of the collections it declares, read with one
    /// `listCollections` and one `listIndexes` per collection that exists.
    /// Nothing is written and no lock is taken.
    ///
    /// ```no_run
    /// # async fn check(manager: schema_core::SchemaManager) -> Result<(), Box<dyn std::error::Error>> {
    /// let snapshot = schema_core::snapshot::Snapshot::from_json(&std::fs::read_to_string("schema.json")?)?;
    /// let drift = manager.verify(&snapshot).await?;
    /// for missing in &drift.missing {
    ///     eprintln!("missing: {missing}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Configuration`] when the snapshot is of other groups
    ///   than this manager's migrations;
    /// - [`Error::DuplicateId`], [`Error::UnknownDependency`] or
    ///   [`Error::Cycle`] when the registered set is invalid;
    /// - [`Error::Database`] when the server cannot be read.
    pub async fn verify(&self, snapshot: &Snapshot) -> Result<Drift, Error> {
        let groups = groups_of(&self.ordered()?);
        if !groups.is_empty() && groups != snapshot.groups() {
            return Err(Error::Configuration {
                reason: format!(
                    "the snapshot is of the group(s) {:?} and this manager applies {:?}: \
                     verify each database against the snapshot of its own group",
                    snapshot.groups(),
                    groups
                ),
            });
        }
        let names: Vec<&str> = snapshot.collections().map(|(name, _)| name).collect();
        let found = live::collections::read(&self.db, &names).await?;
        Ok(drift::compare(snapshot, &found))
    }
}

/// The server's code for a command the user may not run.
const UNAUTHORIZED: i32 = 13;

/// Where a snapshot applies the set.
pub(super) enum Scratch {
    /// A new database of its own, dropped afterwards.
    Own(Database),
    /// One it was given, empty at the start, emptied afterwards.
    Given(Database),
}

impl Scratch {
    fn database(&self) -> &Database {
        match self {
            Scratch::Own(db) | Scratch::Given(db) => db,
        }
    }

    /// Drops the database, or each collection of a given one (all the
    /// snapshot's, since it was empty), each command bounded by `bound`.
    async fn clean(&self, bound: Duration) -> Result<(), Error> {
        match self {
            Scratch::Own(db) => within(bound, db.drop())
                .await
                .map_err(|failure| failure.into_error(format!("drop the scratch database `{}`", db.name()))),
            Scratch::Given(db) => {
                for collection in collection_names(db, bound).await? {
                    within(bound, db.collection::<Document>(&collection).drop())
                        .await
                        .map_err(|failure| {
                            failure.into_error(format!(
                                "drop `{collection}` of the scratch database `{}`",
                                db.name()
                            ))
                        })?;
                }
                Ok(())
            }
        }
    }
}

/// Refuses a given scratch database that is the manager's own or has
/// collections: the migrations would change what is there.
async fn check_given(given: &Database, own: &Database, bound: Duration) -> Result<(), Error> {
    if given.name() == own.name() {
        return Err(Error::Configuration {
            reason: format!(
                "the snapshot database is `{}`, the database this manager applies migrations to: \
                 name an empty database of its own",
                own.name()
            ),
        });
    }
    let found = collection_names(given, bound)
        .await
        .map_err(|error| unauthorized(error, given.name()))?;
    if !found.is_empty() {
        return Err(Error::Configuration {
            reason: format!(
                "the snapshot database `{}` has {} collection(s); the snapshot applies the migrations \
                 there and empties it afterwards, so it must start empty: empty it, or name another",
                given.name(),
                found.len()
            ),
        });
    }
    Ok(())
}

async fn collection_names(db: &Database, bound: Duration) -> Result<Vec<String>, Error> {
    within(bound, db.list_collection_names())
        .await
        .map_err(|failure| failure.into_error(format!("list the collections of `{}`", db.name())))
}

/// `error` as [`Error::SnapshotUnauthorized`] when the server refused the
/// user the scratch database; a migration's own failure stays as it is.
fn unauthorized(error: Error, database: &str) -> Error {
    if matches!(
        error,
        Error::MigrationFailed { .. } | Error::MigrationPanicked { .. }
    ) {
        return error;
    }
    match error.server_error() {
        Some(server) if server.code() == Some(UNAUTHORIZED) => Error::SnapshotUnauthorized {
            database: database.to_owned(),
            source: ServerError::from(server.raw().clone()),
        },
        _ => error,
    }
}

/// The groups `migrations` belong to, sorted, each once: what a snapshot
/// records and what `verify` holds it to.
fn groups_of(migrations: &[&Migration]) -> Vec<String> {
    let mut groups: Vec<String> = migrations.iter().map(|m| m.group().to_owned()).collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Whether `name` is as [`scratch_name`] names a scratch database.
pub(crate) fn is_scratch_name(name: &str) -> bool {
    name.rsplit_once("_snapshot_").is_some_and(|(_, suffix)| {
        suffix.len() == 16
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A database name no one else uses: `<database>_snapshot_<suffix>`, within
/// MongoDB's 63 bytes.
pub(super) fn scratch_name(database: &str) -> String {
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos() as u64 ^ since.as_secs());
    let suffix = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ TAKEN
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let prefix: String = database
        .char_indices()
        .take_while(|(at, c)| at + c.len_utf8() <= 32)
        .map(|(_, c)| c)
        .collect();
    format!("{prefix}_snapshot_{suffix:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_are_short_distinct_and_say_what_they_are() {
        let long = "a".repeat(60);
        let (first, second) = (scratch_name(&long), scratch_name(&long));
        assert_ne!(first, second);
        assert!(first.len() <= 63, "{first}");
        assert!(scratch_name("app").starts_with("app_snapshot_"));
        assert!(is_scratch_name(&first) && is_scratch_name(&scratch_name("app")));
        assert!(!is_scratch_name("app_snapshot_weekly"));
    }
}
