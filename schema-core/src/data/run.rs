//! A backfill's run: the builder checked, then the walk batch by batch,
//! each batch in a transaction with its checkpoint where the server runs
//! them, or changed and then checkpointed, with progress told as it goes.

use std::time::{Duration, Instant};

use tracing::warn;

use super::batches::{self, UNMANAGED_BOUND, Walk};
use super::progress::{Pace, Progress, Reporter};
use super::{Backfill, BackfillReport, Work, context};
use crate::declare::capture::{self, Declared};
use crate::stored::checkpoint::Checkpoint;
use crate::support::error::Error;

impl<'a> Backfill<'a> {
    /// Walks the documents, batch by batch, resuming from this backfill's
    /// checkpoint when a previous holder of the lock left one. Returns
    /// what it did.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidBackfill`] when it has nothing to do, or a batch
    ///   size or rate of zero; nothing is sent to the server;
    /// - [`Error::BackfillFailed`] when a batch's read or update failed
    ///   (after a few attempts when the failure was a failover or a lost
    ///   connection), `for_each_batch`'s function returned an error, or an
    ///   `_id` had a type the walk cannot place;
    /// - [`Error::BackfillOutcomeUnknown`] when a batch's update got no
    ///   answer and is not [`idempotent`](Backfill::idempotent): it was not
    ///   sent again;
    /// - [`Error::BackfillOutOfOrder`] when the server returned a batch out
    ///   of `_id` order: it was not changed;
    /// - [`Error::LockLost`] when, under a manager, the lease ended or was
    ///   taken over: nothing more is done or saved here;
    /// - [`Error::Database`] when the total could not be counted.
    pub async fn run(self) -> Result<BackfillReport, Error> {
        let started = Instant::now();
        let (mut walk, mut work, settings) = self.prepare()?;
        // Preflight hears which documents it walks.
        let namespace = walk.collection.namespace();
        capture::note_in(&namespace.db, || Declared::Backfill {
            collection: namespace.coll.clone(),
            filter: walk.filter.clone(),
            read: walk.first_read(),
        });
        let managed = context::current();
        if let Some(managed) = &managed {
            // Every command of the walk is bounded by the lease.
            walk.bound = managed.checkpoints.lease();
        }
        let (mut checkpoint, resumed) = walk.begin(managed.as_deref(), settings.name.as_deref()).await?;
        let resumed_at = checkpoint.visited;
        let migration = managed
            .as_ref()
            .map(|managed| managed.checkpoints.migration().to_owned());
        let observers = managed
            .as_ref()
            .map(|managed| managed.observers.clone())
            .unwrap_or_default();
        let mut reporter = Reporter::new(resumed_at, settings.log_every, observers);
        let pace = Pace::new(settings.max_per_second);
        let progress = |checkpoint: &Checkpoint, finished: bool| Progress {
            migration: migration.clone(),
            key: checkpoint.key.clone(),
            collection: walk.collection.name().to_owned(),
            done: checkpoint.visited,
            total: checkpoint.total,
            rate: 0.0,
            eta: None,
            finished,
        };
        reporter.tell(progress(&checkpoint, false));
        // Where the server runs them, each batch of an update and its
        // checkpoint are one transaction.
        let mut transactions = managed
            .as_ref()
            .is_some_and(|managed| managed.checkpoints.transactions());
        loop {
            pace.wait(checkpoint.visited - resumed_at).await;
            let at = batches::at(&checkpoint);
            let (ids, exhausted) = walk.next_ids(checkpoint.position.as_ref(), &at).await?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            if let Some(managed) = &managed {
                managed.checkpoints.ensure_live()?;
            }
            // Runs before this one that sent this batch's update and got
            // no answer; none once it is done.
            let unanswered = std::mem::take(&mut checkpoint.unanswered);
            let in_transaction = match (&managed, &work) {
                (Some(managed), Work::Update(update)) if transactions => {
                    let done = walk
                        .transaction(update, &mut checkpoint, &ids, &managed.checkpoints)
                        .await?;
                    transactions = done;
                    done
                }
                _ => false,
            };
            if !in_transaction {
                let mut changed = walk.change(&mut work, &mut checkpoint, ids, &at).await;
                if let (Err(Error::BackfillOutcomeUnknown { at_most, counted, .. }), Some(managed)) =
                    (&mut changed, &managed)
                {
                    // Kept in the checkpoint, so that the next run that
                    // loses this batch's answer counts this run too. When
                    // that cannot be saved, the error says the later
                    // counts are one short.
                    checkpoint.unanswered = unanswered.saturating_add(1);
                    *at_most = Some(checkpoint.unanswered.saturating_add(1));
                    if let Err(not_saved) = managed.checkpoints.save(&checkpoint).await {
                        warn!(
                            collection = %walk.collection.name(),
                            error = %not_saved,
                            "could not note in the checkpoint that a batch's update got no answer"
                        );
                        *counted = false;
                    }
                }
                changed?;
                checkpoint.position = Some(last);
                checkpoint.batches += 1;
                if let Some(managed) = &managed {
                    managed.checkpoints.save(&checkpoint).await?;
                }
            }
            if unanswered > 0 {
                warn!(
                    collection = %walk.collection.name(),
                    batch = checkpoint.batches,
                    unanswered,
                    "a batch whose update got no answer in earlier runs was done again: its documents \
                     may have been changed up to {} times",
                    unanswered.saturating_add(1)
                );
            }
            reporter.tell(progress(&checkpoint, false));
            if exhausted {
                break;
            }
        }
        reporter.tell(progress(&checkpoint, true));
        Ok(BackfillReport {
            collection: walk.collection.name().to_owned(),
            visited: checkpoint.visited,
            matched: checkpoint.matched,
            modified: checkpoint.modified,
            batches: checkpoint.batches,
            resumed_from: resumed.then_some(resumed_at),
            elapsed: started.elapsed(),
        })
    }

    /// Checks the builder and splits it into the walk, its work and the
    /// rest, before anything is sent to the server.
    fn prepare(self) -> Result<(Walk, Work<'a>, Settings), Error> {
        let invalid = |reason: &str| Error::InvalidBackfill {
            collection: self.collection.name().to_owned(),
            reason: reason.to_owned(),
        };
        if self.batch_size == 0 {
            return Err(invalid("its batch size is zero; give `batch_size` at least 1"));
        }
        if self.max_per_second == Some(0) {
            return Err(invalid(
                "its `max_per_second` is zero, so it would never start; give at least 1",
            ));
        }
        let Some(work) = self.work else {
            return Err(invalid(
                "it has nothing to do; give it `update(...)` or `for_each_batch(...)`",
            ));
        };
        let walk = Walk {
            collection: self.collection,
            filter: self.filter,
            batch_size: self.batch_size,
            bound: UNMANAGED_BOUND,
            idempotent: self.idempotent,
        };
        let settings = Settings {
            max_per_second: self.max_per_second,
            name: self.name,
            log_every: self.log_every,
        };
        Ok((walk, work, settings))
    }
}

/// What a run needs besides the walk and its work.
struct Settings {
    max_per_second: Option<u32>,
    name: Option<String>,
    log_every: Duration,
}
