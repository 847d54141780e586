//! The last failure of a background migration, as the manager reads and
//! notes it: where it is kept ([`failures`](crate::failures)), which one
//! counts for the migrations pending, whether a task runs that migration
//! again now, how long the task under the background lock leaves it alone,
//! and noting a failure the task does not ride out.

use std::time::Duration;

use mongodb::bson::DateTime;
use tracing::warn;

use super::streak::worth_another;
use super::{Run, SchemaManager};
use crate::assess::progress::BackgroundFailure;
use crate::assess::report;
use crate::declare::registry::Migration;
use crate::failures::{Failures, Met};
use crate::stored::lock::Lane;
use crate::stored::record::Stored;
use crate::support::error::{Error, chain};
use crate::support::owner::Owner;

impl SchemaManager {
    /// The last background failure, in the lock collection.
    pub(in crate::manager) fn failures(&self) -> Failures {
        Failures::new(
            &self.db,
            &self.lock_collection,
            &self.versions_collection,
            self.lock_lease / 3,
        )
    }

    /// The last failure of one of `pending`'s background migrations, as
    /// declared here (same checksum): the one noted in the lock collection
    /// (read only when a background migration is pending), or else the one
    /// this process's task met and could not note.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub(in crate::manager) async fn last_failure(
        &self,
        pending: &[&'static Migration],
    ) -> Result<Option<BackgroundFailure>, Error> {
        if !pending.iter().any(|migration| migration.is_background()) {
            return Ok(None);
        }
        let noted = self.failures().read().await?.and_then(|noted| {
            pending
                .iter()
                .find(|migration| migration.id() == noted.id && migration.checksum() == noted.checksum)
                .map(|_| BackgroundFailure::noted(&noted))
        });
        Ok(noted.or_else(|| self.met(pending)))
    }

    /// The failure this process's task met last, while its migration is
    /// among `pending`.
    pub(super) fn met(&self, pending: &[&'static Migration]) -> Option<BackgroundFailure> {
        self.background
            .failure()
            .filter(|failure| pending.iter().any(|migration| migration.id() == failure.id))
    }

    /// Whether a background task may be running `failure`'s migration
    /// again now: the background lock is live and was taken since the
    /// failure (whatever it notes as running: a fence moves that on before
    /// the record lands). A waiter then waits for that run rather than fail
    /// on the last.
    pub(super) async fn retried(&self, failure: &BackgroundFailure) -> Result<bool, Error> {
        let Some(lock) = self.lock(Lane::Background).status().await? else {
            return Ok(false);
        };
        Ok(!lock.expired
            && !lock.released
            && lock.since.zip(failure.at).is_some_and(|(since, at)| since > at))
    }

    /// Under the background lock: the last failure of a migration `stored`
    /// lacks, and how much longer to leave it alone, while that is not
    /// over. The noted failure decides (another process may have failed
    /// since this one did); when it cannot be read, the one this process
    /// met. Judged on this process's wall clock against the server's
    /// stamp, and never longer than the pause itself, whatever the clocks
    /// say.
    pub(in crate::manager) async fn pausing(
        &self,
        ordered: &[&'static Migration],
        stored: &Stored,
    ) -> Result<Option<(BackgroundFailure, Duration)>, Error> {
        let (pending, _) = report::split(ordered, stored);
        let failure = match self.last_failure(&pending).await {
            Ok(failure) => failure,
            Err(error) => {
                warn!(%error, "background migrations: could not read the last failure; going by this process's");
                self.met(&pending)
            }
        };
        let Some(failure) = failure else {
            return Ok(None);
        };
        let (Some(at), Some(next)) = (failure.at, failure.next_attempt) else {
            return Ok(None);
        };
        let now = DateTime::now().timestamp_millis();
        let left = next
            .timestamp_millis()
            .saturating_sub(now)
            .min(next.timestamp_millis().saturating_sub(at.timestamp_millis()));
        Ok(u64::try_from(left)
            .ok()
            .filter(|left| *left > 0)
            .map(|left| (failure, Duration::from_millis(left))))
    }

    /// Under the background lock, a background migration's failure: one
    /// that the task rides out (transient), or that is not a migration's,
    /// goes back to the task; any other is noted where every process reads
    /// it before the lock is let go.
    pub(in crate::manager) async fn note_if_final(&self, error: Error) -> Result<Run, Error> {
        if worth_another(&error) {
            return Err(error);
        }
        let Some(id) = failure_id(&error) else {
            return Err(error);
        };
        let noted = self.note_failure(&id, &error).await;
        Ok(Run::Failed(error, noted))
    }

    /// Notes `failure` of migration `id` where every process reads it, and
    /// returns it as noted (or as met, when it could not be noted).
    pub(super) async fn note_failure(&self, id: &str, failure: &Error) -> BackgroundFailure {
        let by = Owner::new().process();
        let (kind, message) = (failure.kind(), chain(failure));
        let met = BackgroundFailure {
            id: id.to_owned(),
            kind: kind.to_owned(),
            message: message.clone(),
            at: None,
            by: by.clone(),
            in_a_row: self
                .background
                .failure()
                .filter(|last| last.id == id)
                .map_or(1, |last| last.in_a_row.saturating_add(1)),
            next_attempt: None,
        };
        let migration = match self.ordered() {
            Ok(ordered) => ordered.into_iter().find(|migration| migration.id() == id),
            Err(_) => None,
        };
        let Some(migration) = migration else {
            return met;
        };
        let noted = self
            .failures()
            .note(&Met {
                migration,
                kind,
                message: &message,
                by: &by,
                pause: self.background_retry_pause,
            })
            .await;
        match noted {
            Ok(noted) => BackgroundFailure::noted(&noted),
            Err(error) => {
                warn!(%error, "background migrations: could not note the failure for other processes");
                met
            }
        }
    }
}

/// The migration an error names, when it names one.
pub(super) fn failure_id(error: &Error) -> Option<String> {
    match error {
        Error::MigrationFailed { id, .. }
        | Error::MigrationPanicked { id, .. }
        | Error::LockLost { id, .. }
        | Error::RecordFailed { id, .. } => Some(id.clone()),
        _ => None,
    }
}
