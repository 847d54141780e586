//! Preflight: what the pending migrations will do to the live database,
//! before they run. The set is applied to a scratch database to hear what
//! each pending migration declares (as a snapshot hears it), then the
//! probes read the live database, read-only.

use std::time::Duration;

use tracing::warn;

use super::SchemaManager;
use crate::assess::policy::Policy;
use crate::assess::preflight::{Code, PreflightReport, Severity};
use crate::declare::capture::{self, Declared};
use crate::declare::registry::Migration;
use crate::probes::Probe;
use crate::support::error::Error;

/// How [`SchemaManager::preflight_with`] probes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The `maxTimeMS` of each probe; a probe stopped by it is
    /// inconclusive.
    pub max_time: Duration,
    /// Whether each finding carries the `_id`s of a few offending
    /// documents (never their values).
    pub show_ids: bool,
}

impl Options {
    /// How long a probe may run unless told otherwise: 30 seconds.
    pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(30);

    /// Each probe's `maxTimeMS`.
    pub fn max_time(mut self, max_time: Duration) -> Options {
        self.max_time = max_time;
        self
    }

    /// Whether findings show a few offending `_id`s.
    pub fn show_ids(mut self, show: bool) -> Options {
        self.show_ids = show;
        self
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_time: Options::DEFAULT_MAX_TIME,
            show_ids: false,
        }
    }
}

impl SchemaManager {
    /// What a start does when preflight says a pending migration fails:
    /// with [`Policy::Fail`], [`apply_all`](SchemaManager::apply_all) runs
    /// [`preflight`](SchemaManager::preflight) when something is pending
    /// and refuses, with [`Error::PreflightFailed`] and before anything
    /// runs, when a finding not accepted says a migration would fail;
    /// with [`Policy::Warn`] it logs the findings (or that preflight could
    /// not run) and goes on. The background task does not run it again
    /// when it tries a background migration once more. Off
    /// ([`Policy::Ignore`]) by default: preflight scans collections, and
    /// every process that finds something pending runs it.
    pub fn preflight_at_start(mut self, policy: Policy) -> SchemaManager {
        self.preflight_at_start = policy;
        self
    }

    /// [`preflight_with`](SchemaManager::preflight_with) the default
    /// [`Options`].
    ///
    /// # Errors
    ///
    /// As [`preflight_with`](SchemaManager::preflight_with).
    pub async fn preflight(&self) -> Result<PreflightReport, Error> {
        self.preflight_with(&Options::default()).await
    }

    /// What each pending migration will do to the documents already in
    /// this manager's database, before it runs: a unique index over
    /// duplicates, an index that conflicts with one already there, a
    /// validator that refuses existing documents, a TTL index that deletes
    /// at once or cannot expire some, a dropped index that queries use, a
    /// backfill that scans the collection (see
    /// [`Code`](crate::preflight::Code)).
    ///
    /// What each declares is learned as [`snapshot`](SchemaManager::snapshot)
    /// learns it: the set is applied to a scratch database, dropped
    /// afterwards, while the helpers are heard. Then read-only probes of
    /// this database, each bounded by `maxTimeMS` and allowed to read from
    /// a secondary, count what each declaration is about. Nothing is
    /// written to this database: no record, no lock, no index.
    ///
    /// A probe that times out or that the server refuses is listed in
    /// [`inconclusive`](PreflightReport::inconclusive), never as clean.
    ///
    /// # Errors
    ///
    /// - Those of [`snapshot`](SchemaManager::snapshot), applying the set
    ///   to the scratch database;
    /// - Those of reading the records, as [`status`](SchemaManager::status);
    /// - [`Error::Database`] when the declared collections cannot be listed.
    pub async fn preflight_with(&self, options: &Options) -> Result<PreflightReport, Error> {
        self.check_configuration()?;
        let (pending, _) = self.pending_and_unknown().await?;
        self.preflight_of(&pending, options).await
    }

    /// Preflight of `pending`, the migrations not recorded, in order.
    pub(super) async fn preflight_of(
        &self,
        pending: &[&'static Migration],
        options: &Options,
    ) -> Result<PreflightReport, Error> {
        let mut report = PreflightReport {
            pending: pending.iter().map(|m| m.id().to_owned()).collect(),
            ..PreflightReport::default()
        };
        if pending.is_empty() {
            return Ok(report);
        }
        let mut theirs: Vec<(&Migration, Vec<Declared>)> = Vec::new();
        for (id, declared) in capture::by_migration(self.learn().await?) {
            if let Some(migration) = pending.iter().find(|migration| migration.id() == id) {
                theirs.push((*migration, declared));
            }
        }
        let all: Vec<&Declared> = theirs.iter().flat_map(|(_, declared)| declared).collect();
        let mut probe = Probe::new(&self.db, &all, options.max_time, options.show_ids).await?;
        for (migration, declared) in &theirs {
            let accepts: Vec<Code> = migration
                .accepts()
                .iter()
                .filter_map(|name| Code::from_name(name))
                .collect();
            report.add(migration.id(), &accepts, probe.probe(declared).await);
        }
        Ok(report)
    }

    /// What a start does about `pending` under
    /// [`preflight_at_start`](SchemaManager::preflight_at_start).
    pub(super) async fn vet_preflight(&self, pending: &[&'static Migration]) -> Result<(), Error> {
        if self.preflight_at_start == Policy::Ignore || pending.is_empty() {
            return Ok(());
        }
        let report = match self.preflight_of(pending, &Options::default()).await {
            Ok(report) => report,
            Err(error) if self.preflight_at_start == Policy::Warn => {
                warn!(%error, "preflight could not run; the start goes on without it");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        if self.preflight_at_start == Policy::Fail {
            let mut denied = report.denied(Severity::Fails);
            if let Some(first) = denied.next() {
                return Err(Error::PreflightFailed {
                    migration: first.migration.clone(),
                    code: first.code.name().to_owned(),
                    collection: first.collection.clone(),
                    message: first.message.clone(),
                    others: denied.count(),
                });
            }
        }
        for finding in report.findings.iter().filter(|finding| !finding.accepted) {
            warn!(
                migration.id = %finding.migration,
                code = %finding.code,
                severity = %finding.severity,
                collection = %finding.collection,
                count = finding.count,
                "preflight: {}",
                finding.message
            );
        }
        for inconclusive in &report.inconclusive {
            warn!(
                migration.id = %inconclusive.migration,
                code = %inconclusive.code,
                collection = %inconclusive.collection,
                "preflight could not say: {}",
                inconclusive.reason
            );
        }
        Ok(())
    }
}
