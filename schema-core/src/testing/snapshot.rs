//! Keeping the checked-in snapshot of the declared schema current: a test
//! that fails with the difference when a change to the migrations changes
//! the schema and the file was not changed with it.

use std::path::Path;

use crate::manager::SchemaManager;
use crate::support::diff;
use crate::support::error::Error;

/// The environment variable that makes [`check_snapshot`] write the file
/// instead of comparing: `SCHEMA_SNAPSHOT=overwrite`.
pub const SNAPSHOT_VARIABLE: &str = "SCHEMA_SNAPSHOT";

/// Takes the [`snapshot`](SchemaManager::snapshot) of what `manager`'s
/// migrations declare and compares it with the file at `path`, so that a
/// pull request that changes the schema shows the change in that file.
///
/// With `SCHEMA_SNAPSHOT=overwrite` in the environment, the file (and its
/// directory) is written instead, and the check passes: review what
/// changed before committing it.
///
/// ```no_run
/// use schema_core::SchemaManager;
/// use schema_core::mongodb::Database;
///
/// #[schema_core::test]
/// async fn the_checked_in_schema_is_what_the_migrations_declare(db: Database) -> Result<(), schema_core::Error> {
///     let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.json");
///     schema_core::testing::check_snapshot(&SchemaManager::new(db), path).await
/// }
/// ```
///
/// # Errors
///
/// - [`Error::SnapshotMismatch`] with the lines that differ (`-` in the
///   file, `+` declared);
/// - [`Error::SnapshotFile`] when the file cannot be read (it does not
///   exist yet: run once with `SCHEMA_SNAPSHOT=overwrite`) or written;
/// - any error of [`SchemaManager::snapshot`].
pub async fn check_snapshot(manager: &SchemaManager, path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    let declared = manager.snapshot().await?.to_json();
    let shown = path.display().to_string();
    let file_error = |action: &str, source| Error::SnapshotFile {
        action: action.to_owned(),
        path: shown.clone(),
        source,
    };
    if std::env::var(SNAPSHOT_VARIABLE).is_ok_and(|value| value == "overwrite") {
        if let Some(directory) = path
            .parent()
            .filter(|directory| !directory.as_os_str().is_empty())
        {
            std::fs::create_dir_all(directory).map_err(|error| file_error("write", error))?;
        }
        return std::fs::write(path, declared).map_err(|error| file_error("write", error));
    }
    let checked_in = std::fs::read_to_string(path).map_err(|error| file_error("read", error))?;
    let difference = diff::lines(&checked_in, &declared);
    if difference.is_empty() {
        Ok(())
    } else {
        Err(Error::SnapshotMismatch {
            path: shown,
            diff: difference,
        })
    }
}
