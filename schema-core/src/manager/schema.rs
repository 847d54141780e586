//! The declared schema and a live database held against it: taking a
//! snapshot (the set applied to a scratch database while the helpers are
//! listened to) and verifying a database against one (read-only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::SchemaManager;
use crate::assess::drift::{self, Drift};
use crate::declare::capture::Capture;
use crate::declare::registry::Migration;
use crate::declare::snapshot::Snapshot;
use crate::live;
use crate::support::error::Error;

impl SchemaManager {
    /// The schema this manager's migrations declare: what their calls to
    /// [`ensure_indexes`](crate::indexes::ensure_indexes),
    /// [`set_validator`](crate::set_validator),
    /// [`drop_index`](crate::indexes::drop_index) and the
    /// [`snapshot::declare_*`](crate::snapshot) functions declare, folded
    /// in apply order.
    ///
    /// The set is applied, as [`apply_all`](SchemaManager::apply_all)
    /// would, to a new, empty scratch database on the same server (named
    /// after this one with `_snapshot_` and a random suffix), and the
    /// helpers' calls are noted as they are made, not read back from the
    /// server: servers differ in what they list. The scratch database is
    /// dropped afterwards, also when a migration fails; only if the
    /// returned future is dropped half way is it left behind. This
    /// manager's own database is not touched.
    ///
    /// # Errors
    ///
    /// Those of [`apply_all`](SchemaManager::apply_all) applying the set to
    /// the scratch database (a failing migration is
    /// [`Error::MigrationFailed`]), and [`Error::Database`] when the
    /// scratch database cannot be dropped.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.check_configuration()?;
        let groups = groups_of(&self.ordered()?);
        let scratch = self.db.client().database(&scratch_name(self.db.name()));
        // Everything applied before it returns, and what it learns kept
        // apart from this manager's own database.
        let mut manager = self.clone().wait_for_background(true);
        manager.db = scratch.clone();
        manager.observers.clear();
        manager.background = Default::default();
        let capture = Capture::start(scratch.name());
        let applied = manager.apply_all().await;
        let declared = capture.finish();
        let dropped = scratch.drop().await;
        applied?;
        dropped.map_err(|error| {
            Error::database(format!("drop the scratch database `{}`", scratch.name()), error)
        })?;
        Ok(Snapshot::fold(groups, declared))
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

/// The groups `migrations` belong to, sorted, each once: what a snapshot
/// records and what `verify` holds it to.
fn groups_of(migrations: &[&Migration]) -> Vec<String> {
    let mut groups: Vec<String> = migrations.iter().map(|m| m.group().to_owned()).collect();
    groups.sort();
    groups.dedup();
    groups
}

/// A database name no one else uses: `<database>_snapshot_<suffix>`, within
/// MongoDB's 63 bytes.
fn scratch_name(database: &str) -> String {
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
    }
}
