//! Ties the pieces together: plan the registered migrations, read what the
//! versions collection holds, run what is missing and record it.

use std::collections::HashSet;
use std::time::Instant;

use mongodb::Database;
use tracing::{Instrument, info, info_span};

use crate::error::Error;
use crate::records::Records;
use crate::registry::{self, Migration};
use crate::unwind::CatchUnwind;
use crate::{owner, plan};

/// The default name of the collection that records applied migrations.
pub const DEFAULT_VERSIONS_COLLECTION: &str = "schema_versions";

/// Applies the migrations registered with `#[migration]` to one database.
///
/// ```no_run
/// # async fn start(db: mongodb::Database) -> Result<(), schema_core::Error> {
/// let report = schema_core::SchemaManager::new(db).apply_all().await?;
/// println!("applied {:?}", report.applied);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SchemaManager {
    db: Database,
    versions_collection: String,
}

/// What one [`SchemaManager::apply_all`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Ids applied by this call, in the order they ran.
    pub applied: Vec<String>,
    /// Ids of registered migrations that were already recorded, in plan
    /// order.
    pub already_applied: Vec<String>,
}

impl SchemaManager {
    /// A manager for `db`, recording applied migrations in
    /// `schema_versions`.
    pub fn new(db: Database) -> SchemaManager {
        SchemaManager {
            db,
            versions_collection: DEFAULT_VERSIONS_COLLECTION.to_owned(),
        }
    }

    /// Records applied migrations in the collection `name` instead of
    /// `schema_versions`.
    pub fn versions_collection(mut self, name: impl Into<String>) -> SchemaManager {
        self.versions_collection = name.into();
        self
    }

    /// The database this manager applies migrations to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Applies every registered migration that the versions collection does
    /// not record yet, in dependency order, recording each one after it
    /// succeeds.
    ///
    /// The registered set is checked before anything is sent to the server.
    /// When nothing is pending, this costs one read of the versions
    /// collection.
    ///
    /// # Errors
    ///
    /// - [`Error::DuplicateId`], [`Error::UnknownDependency`] or
    ///   [`Error::Cycle`] when the registered set is invalid; the database
    ///   is not touched;
    /// - [`Error::Database`] when the server cannot be reached or read, and
    ///   [`Error::MalformedRecord`] when a stored record has another shape;
    ///   nothing is run;
    /// - [`Error::MigrationFailed`] or [`Error::MigrationPanicked`] when a
    ///   migration fails: it is not recorded, later ones do not run, and
    ///   earlier ones of the same call stay recorded;
    /// - [`Error::RecordFailed`] when a migration ran but its record could
    ///   not be written.
    pub async fn apply_all(&self) -> Result<ApplyReport, Error> {
        let declared = registry::registered();
        let ordered = plan::order(&declared)?;
        let records = Records::new(&self.db, &self.versions_collection);
        let stored = records.read_all().await?;
        let applied_ids: HashSet<&str> = stored.iter().map(|record| record.id.as_str()).collect();
        let pending = plan::pending(&ordered, |id| applied_ids.contains(id));

        let mut report = ApplyReport {
            applied: Vec::with_capacity(pending.len()),
            already_applied: ordered
                .iter()
                .filter(|migration| applied_ids.contains(migration.id()))
                .map(|migration| migration.id().to_owned())
                .collect(),
        };
        if pending.is_empty() {
            return Ok(report);
        }
        let applied_by = owner::process_name();
        for migration in pending {
            self.apply_one(migration, &records, &applied_by).await?;
            report.applied.push(migration.id().to_owned());
        }
        Ok(report)
    }

    async fn apply_one(
        &self,
        migration: &Migration,
        records: &Records,
        applied_by: &str,
    ) -> Result<(), Error> {
        let span = info_span!("migration", migration.id = migration.id());
        async {
            info!(description = migration.description(), "applying migration");
            let started = Instant::now();
            match CatchUnwind(migration.run(&self.db)).await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    tracing::error!(error = %source, "migration failed");
                    return Err(Error::MigrationFailed {
                        id: migration.id().to_owned(),
                        source,
                    });
                }
                Err(message) => {
                    tracing::error!(panic = %message, "migration panicked");
                    return Err(Error::MigrationPanicked {
                        id: migration.id().to_owned(),
                        message,
                    });
                }
            }
            let duration = started.elapsed();
            records
                .insert(migration.id(), migration.description(), duration, applied_by)
                .await?;
            info!(duration_ms = duration.as_millis() as u64, "migration applied");
            Ok(())
        }
        .instrument(span)
        .await
    }
}
