//! The operations of [`SchemaManager`], each a short script: check the
//! configuration, take the declared set, read the records, vet them, and
//! hand the engine what to do under the lock.

use std::collections::HashSet;
use std::time::Duration;

use tracing::{info, warn};

use super::SchemaManager;
use super::background::{Heed, Run};
use crate::assess::policy;
use crate::assess::report::{self, ApplyReport, ForgetReport, MarkReport};
use crate::assess::status::{self, BackfillStatus, Locks, Status};
use crate::declare::order;
use crate::declare::registry::Migration;
use crate::engine::vet_stored;
use crate::live;
use crate::stored::lock::Lane;
use crate::support::error::Error;

impl SchemaManager {
    /// Applies every registered migration that the versions collection does
    /// not record yet, in dependency order, recording each one after it
    /// succeeds.
    ///
    /// The configuration and the registered set are checked before anything
    /// is sent to the server. When nothing is pending, this costs one read
    /// of the versions collection and takes no lock. Otherwise it takes the
    /// lock (waiting for another process that holds it), reads the versions
    /// collection again, applies what is still missing and releases the
    /// lock, also when a migration fails or panics. It returns once every
    /// migration this binary knows is recorded, by this process or another,
    /// except the background ones (`#[migration(background)]`): those come
    /// last, and unless [`wait_for_background`](SchemaManager::wait_for_background)
    /// is set, `apply_all` returns before them, names them in
    /// [`ApplyReport::background`], and a task it spawns on the current
    /// tokio runtime applies them in the same way (see
    /// [`wait_applied`](SchemaManager::wait_applied)).
    ///
    /// While it holds the lock, the lease is renewed outside the
    /// migration's task (see [`lease_client`](SchemaManager::lease_client)),
    /// and each migration counts as complete only once a write that only
    /// the lease's holder can make notes it in the lock; only then is it
    /// recorded. A process that takes the lock over after a crash records
    /// what was completed and runs again only what was not.
    ///
    /// The tokio runtime must have its time driver enabled, as
    /// `#[tokio::main]` does. If the returned future is dropped half way,
    /// the lock is released when its lease ends.
    ///
    /// # Errors
    ///
    /// - [`Error::Configuration`] when the lock and versions collections are
    ///   the same, the background retry pause is shorter than
    ///   [`MIN_BACKGROUND_RETRY_PAUSE`](SchemaManager::MIN_BACKGROUND_RETRY_PAUSE),
    ///   or the lease is shorter than
    ///   [`MIN_LOCK_LEASE`](SchemaManager::MIN_LOCK_LEASE) (or, on a sharded
    ///   cluster, [`MIN_SHARDED_LOCK_LEASE`](SchemaManager::MIN_SHARDED_LOCK_LEASE));
    /// - [`Error::LeaseRenewal`] when the lease's renewal cannot start;
    ///   nothing is run;
    /// - [`Error::DuplicateId`], [`Error::UnknownDependency`],
    ///   [`Error::Cycle`] or [`Error::BackgroundDependency`] when the
    ///   registered set is invalid; the database is not touched;
    /// - [`Error::ConnectionFailed`] when the server cannot be reached or
    ///   refuses the client, [`Error::Database`] or [`Error::ServerTimeout`]
    ///   when it cannot be read in time, and [`Error::MalformedRecord`]
    ///   when a stored record has another shape; nothing is run;
    /// - [`Error::LockTimeout`] when another process held the lock longer
    ///   than the wait timeout;
    /// - [`Error::MigrationFailed`] or [`Error::MigrationPanicked`] when a
    ///   migration fails: it is not recorded, later ones do not run, and
    ///   earlier ones of the same call stay recorded;
    /// - [`Error::LockLost`] when this process's lease ended (by its own
    ///   clock) or another process took the lock over before a migration
    ///   was noted as complete;
    /// - [`Error::RecordFailed`] when a migration was completed but its
    ///   record could not be written; the next start writes it.
    pub async fn apply_all(&self) -> Result<ApplyReport, Error> {
        match self.apply(Heed::Nothing).await? {
            Run::Applied(report) => Ok(report),
            Run::Paused(failure, _) => Err(failure.to_error()),
            Run::Failed(error, _) => Err(error),
        }
    }

    /// `apply_all`, heeding or not the last background failure (see
    /// [`Heed`]).
    pub(super) async fn apply(&self, heed: Heed) -> Result<Run, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        vet_stored(&ordered, &stored, &records)?;
        let (pending, report) = report::split(&ordered, &stored);
        let (drifted, unknown) = (&report.drifted, &report.unknown);
        policy::vet(
            self.on_drift,
            self.on_unknown,
            &self.versions_collection,
            drifted,
            unknown,
        )?;
        // At the start only: the background task's tries again would
        // replay the whole set each time.
        if heed == Heed::Nothing {
            self.vet_preflight(&pending).await?;
        }
        let run = self
            .apply_lane(Lane::Start, &ordered, &pending, report, Heed::Nothing)
            .await?;
        let Run::Applied(mut report) = run else {
            return Ok(run);
        };
        self.background.recorded(&report.applied);
        self.background.recorded(&report.already_applied);
        if !self.wait_for_background && heed == Heed::Nothing {
            report.background = pending
                .iter()
                .filter(|migration| migration.is_background())
                .map(|migration| migration.id().to_owned())
                .filter(|id| !report.applied.contains(id) && !report.already_applied.contains(id))
                .collect();
            if !report.background.is_empty() {
                self.start_background(&report.background)?;
            }
            return Ok(Run::Applied(report));
        }
        let run = self
            .apply_lane(Lane::Background, &ordered, &pending, report, heed)
            .await?;
        let Run::Applied(report) = run else {
            return Ok(run);
        };
        // A failure noted for one of them is over.
        let background: Vec<String> = pending
            .iter()
            .filter(|migration| {
                migration.is_background() && report.applied.iter().any(|id| id == migration.id())
            })
            .map(|migration| migration.id().to_owned())
            .collect();
        if let Err(error) = self.failures().clear(&background).await {
            warn!(%error, "could not remove the last background failure; it is of a recorded migration, which nothing heeds");
        }
        self.background.recorded(&report.applied);
        self.background.recorded(&report.already_applied);
        Ok(Run::Applied(report))
    }

    /// Applies what `pending` holds of `lane`'s migrations under that
    /// lane's lock, when it holds any, and adds what it did to `before`
    /// (the report of what was read, or of the lane before). Heeding the
    /// last failure (the background task), it lets the lock go without
    /// running anything while a failure of one of them says to pause, and
    /// notes a failure that the task does not ride out before it lets the
    /// lock go, so that no task waiting for the lock runs the migration
    /// straight after.
    async fn apply_lane(
        &self,
        lane: Lane,
        ordered: &[&'static Migration],
        pending: &[&'static Migration],
        before: ApplyReport,
        heed: Heed,
    ) -> Result<Run, Error> {
        let Some(first) = pending.iter().find(|migration| Lane::of(migration) == lane) else {
            return Ok(Run::Applied(before));
        };
        let engine = self.engine(lane);
        let noted = first.id();
        let (run, interrupted) = engine
            .under_lock(self.lock_wait_timeout, Some(noted), async |held, stored| {
                if heed == Heed::LastFailure
                    && let Some((failure, left)) = self.pausing(ordered, &stored).await?
                {
                    return Ok(Run::Paused(failure, left));
                }
                match engine.apply_pending(ordered, held, stored, noted, lane).await {
                    Ok(report) => Ok(Run::Applied(report)),
                    Err(error) if heed == Heed::LastFailure => self.note_if_final(error).await,
                    Err(error) => Err(error),
                }
            })
            .await?;
        Ok(match run {
            Run::Applied(report) => Run::Applied(report::after(before, report, interrupted)),
            other => other,
        })
    }

    /// Every known migration in apply order with its state, the records no
    /// registered migration has, this process's background task, and,
    /// while a migration is pending, the backfills and index builds under
    /// way. Reads the versions collection once (and, when something is
    /// pending, the lock and the server's `$currentOp`, and for the builds
    /// it lists, whether they wait for their commit quorum); writes
    /// nothing.
    ///
    /// # Errors
    ///
    /// Those of an invalid registered set ([`Error::DuplicateId`],
    /// [`Error::UnknownDependency`], [`Error::Cycle`]), [`Error::Database`]
    /// and [`Error::MalformedRecord`].
    pub async fn status(&self) -> Result<Status, Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        vet_stored(&ordered, &stored, &records)?;
        self.background.saw(&stored);
        let mut status = status::status(&ordered, &stored);
        status.background = self.background.task();
        if !status.is_up_to_date() {
            // Only a migration still to apply can have a backfill, an
            // index build under way or a failure.
            status.backfills = self.backfills().await?;
            status.index_builds = live::index_builds::read(&self.db).await;
            let (pending, _) = report::split(&ordered, &stored);
            status.background.failed = self.last_failure(&pending).await?;
        }
        Ok(status)
    }

    /// What [`apply_all`](SchemaManager::apply_all) would run now, in order,
    /// without running it. Writes nothing.
    ///
    /// # Errors
    ///
    /// As [`status`](SchemaManager::status).
    pub async fn plan(&self) -> Result<Vec<&'static Migration>, Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        vet_stored(&ordered, &stored, &records)?;
        Ok(report::split(&ordered, &stored).0)
    }

    /// Removes the record of migration `id`, so the next
    /// [`apply_all`](SchemaManager::apply_all) runs it again. Takes the
    /// lock of `id`'s [`Lane`] for the removal, without waiting; first
    /// records what a previous holder completed and clears the lock's
    /// ledger of it (so nothing left there can record `id` again without
    /// running it), makes sure the other lane's lock holds no completion of
    /// `id` either (see [`Lane`]), and confirms the lease just before
    /// removing. A background migration can be forgotten while a start's
    /// migrations apply, and the other way round.
    ///
    /// Allowed while the lock is kept, released, for the checkpoints of a
    /// backfill that has not finished: those belong to a migration not yet
    /// recorded, which `forget` cannot remove, and they stay for its next
    /// run.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], [`Error::UnknownMigration`] when no
    /// registered migration has `id`, [`Error::LockHeld`] while another
    /// process holds the lock of `id`'s lane (or the other lane's holder
    /// runs `id`, or has not recorded it yet), [`Error::LockLost`],
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub async fn forget(&self, id: &str) -> Result<ForgetReport, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        let migration = find(&ordered, id)?;
        let lane = Lane::of(migration);
        let engine = self.engine(lane);
        let (removed, interrupted) = engine
            .under_lock(Duration::ZERO, None, async |held, _| {
                self.settle_other_lane(lane, id).await?;
                held.note_running(migration.id(), None).await?;
                let removed = engine.records.delete(migration.id()).await?;
                if let Err(error) = self.failures().clear(&[id.to_owned()]).await {
                    warn!(%error, "could not remove the last background failure of the forgotten migration");
                }
                Ok(removed)
            })
            .await?;
        info!(
            migration.id = id,
            removed, "forgot migration; it runs again on the next apply"
        );
        Ok(ForgetReport { removed, interrupted })
    }

    /// Removes the record `id` of a migration this binary does not declare:
    /// one a newer version applied and an older one is rolled back over, or
    /// a document that is not a record. Takes the start lock like
    /// [`forget`](SchemaManager::forget), and makes sure the background
    /// lock holds no completion of `id`. `id` is the record's `_id` as
    /// [`status`](SchemaManager::status) shows it; an `_id` that is not a
    /// string is matched as an integer or an ObjectId when `id` reads as one.
    ///
    /// # Errors
    ///
    /// As [`forget`](SchemaManager::forget), except that any id is
    /// accepted.
    pub async fn forget_unknown(&self, id: &str) -> Result<ForgetReport, Error> {
        self.check_configuration()?;
        let engine = self.engine(Lane::Start);
        let (removed, interrupted) = engine
            .under_lock(Duration::ZERO, None, async |held, _| {
                self.settle_other_lane(Lane::Start, id).await?;
                held.note_running(id, None).await?;
                engine.records.delete_any(id).await
            })
            .await?;
        info!(
            record.id = id,
            removed, "forgot a record this binary does not declare"
        );
        Ok(ForgetReport { removed, interrupted })
    }

    /// Who holds each of the two locks ([`Lane`]), if anyone: owner, host,
    /// process, since when, the migration it is running, when its lease
    /// ends by the server's clock and whether it already has. Two reads;
    /// writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedLock`] naming the field when a lock document has
    /// another shape (remove it with
    /// [`unlock_force`](SchemaManager::unlock_force)), [`Error::Database`]
    /// and [`Error::ServerTimeout`].
    pub async fn lock_status(&self) -> Result<Locks, Error> {
        self.check_configuration()?;
        Ok(Locks {
            start: self.lock(Lane::Start).status().await?,
            background: self.lock(Lane::Background).status().await?,
        })
    }

    /// Removes `lane`'s lock when its lease has ended, after recording what
    /// its holder completed. Returns whether there was a lock to remove. A
    /// lock whose lease has ended is taken over by the next start (or
    /// background task) anyway; this clears it without starting one. The
    /// other lane's lock is left alone.
    ///
    /// A lock that holds the checkpoints of a backfill (see [`data`]) is
    /// kept, released, so that the next start resumes the backfill;
    /// [`unlock_force`](SchemaManager::unlock_force) removes them too, and
    /// the backfill then starts again from the beginning.
    ///
    /// [`data`]: crate::data
    ///
    /// # Errors
    ///
    /// [`Error::LockHeld`] while the lease is live (see
    /// [`unlock_force`](SchemaManager::unlock_force)),
    /// [`Error::MalformedLock`], [`Error::Database`] and
    /// [`Error::ServerTimeout`].
    pub async fn unlock(&self, lane: Lane) -> Result<bool, Error> {
        self.check_configuration()?;
        let engine = self.engine(lane);
        if engine.lock.status().await?.is_none() {
            return Ok(false);
        }
        // Taking the lock records what its holder completed; releasing it
        // is the removal.
        engine
            .under_lock(Duration::ZERO, None, async |_, _| Ok(()))
            .await?;
        info!(
            lane = lane.as_str(),
            "removed a schema lock whose lease had ended"
        );
        Ok(true)
    }

    /// Removes `lane`'s lock whatever its state: live, expired or
    /// malformed. Returns whether there was one. The other lane's lock is
    /// left alone.
    ///
    /// Dangerous while its holder is alive: another process can then take
    /// the lock and run the migration the holder is running, a second time
    /// and at once. The holder itself records nothing more (its next write
    /// to the lock no longer matches) and stops with [`Error::LockLost`].
    /// Completions its holder had not recorded are dropped with the lock,
    /// and those migrations run again. Use it for a malformed lock, or when
    /// the holder is known to be gone.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], [`Error::Database`] and
    /// [`Error::ServerTimeout`].
    pub async fn unlock_force(&self, lane: Lane) -> Result<bool, Error> {
        self.check_configuration()?;
        let removed = self.lock(lane).remove().await?;
        if removed {
            warn!(lane = lane.as_str(), "removed the schema lock by force");
        }
        Ok(removed)
    }

    /// Records migration `id` and every migration it depends on as applied
    /// without running them: a baseline, for a database whose indexes
    /// already exist. A drifted migration among them gets its current
    /// checksum recorded, accepting the edit. Waits for the lock like
    /// `apply_all`, and fences each record like a completed migration: the
    /// start lock for the migrations applied at start, then the background
    /// lock for the background ones, each taken only when it has some to
    /// mark (so marking a background migration waits for one that runs).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], [`Error::UnknownMigration`] when no
    /// registered migration has `id`, [`Error::LockTimeout`],
    /// [`Error::LockLost`], [`Error::Database`], [`Error::ServerTimeout`]
    /// and [`Error::RecordFailed`].
    pub async fn mark_applied(&self, id: &str) -> Result<MarkReport, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        find(&ordered, id)?;
        let wanted = order::with_dependencies(&ordered, id);
        let mut report = MarkReport::default();
        for lane in Lane::ALL {
            let wanted: HashSet<&str> = ordered
                .iter()
                .filter(|migration| Lane::of(migration) == lane && wanted.contains(migration.id()))
                .map(|migration| migration.id())
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let engine = self.engine(lane);
            let (mut marked, interrupted) = engine
                .under_lock(self.lock_wait_timeout, None, async |held, stored| {
                    engine.mark(&ordered, &wanted, held, stored).await
                })
                .await?;
            report.marked.append(&mut marked);
            report.interrupted = report.interrupted.or(interrupted);
        }
        Ok(report)
    }
}

impl SchemaManager {
    /// The backfills whose checkpoints either lock holds.
    pub(super) async fn backfills(&self) -> Result<Vec<BackfillStatus>, Error> {
        let mut backfills = self.lock(Lane::Start).backfills().await?;
        backfills.append(&mut self.lock(Lane::Background).backfills().await?);
        Ok(backfills)
    }

    /// Makes sure the lock of the lane other than `lane` holds no
    /// completion of `id` that its next holder would record once `id`'s
    /// record is removed: a lock whose lease ended is taken and let go
    /// (which records its ledger), a live holder that runs `id` or has not
    /// recorded it refuses. Only a binary that declares `id` in the other
    /// lane (an older or newer release) can have run it there.
    async fn settle_other_lane(&self, lane: Lane, id: &str) -> Result<(), Error> {
        let other = lane.other();
        let Some(holder) = self.lock(other).status().await? else {
            return Ok(());
        };
        let noted = holder.running.as_deref() == Some(id) || holder.unrecorded.iter().any(|done| done == id);
        if !noted {
            return Ok(());
        }
        if !holder.expired {
            return Err(Error::LockHeld {
                holder: holder.owner,
                running: holder.running,
                expires_at: holder.lease_ends_at,
            });
        }
        self.engine(other)
            .under_lock(Duration::ZERO, None, async |_, _| Ok(()))
            .await?;
        Ok(())
    }
}

fn find(ordered: &[&'static Migration], id: &str) -> Result<&'static Migration, Error> {
    ordered
        .iter()
        .copied()
        .find(|migration| migration.id() == id)
        .ok_or_else(|| Error::UnknownMigration { id: id.to_owned() })
}
