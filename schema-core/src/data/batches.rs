//! The walk's reads and writes: where it starts (a checkpoint, or the
//! beginning with a count), each batch's `_id`s read in order and checked
//! ([`order`](super::order)), and each batch changed, with what is tried
//! again after a failure and what stops the walk. The queries themselves
//! are [`walk`](super::walk)'s; a batch as a transaction is
//! [`transaction`](super::transaction)'s.

use std::time::Duration;

use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{Collation, UpdateModifications};
use tracing::{info, warn};

use super::context::Managed;
use super::walk::Beyond;
use super::{Work, order, walk};
use crate::stored::checkpoint::{Checkpoint, bson_type};
use crate::support::convert;
use crate::support::error::{self, BoxError, Error, ServerError};
use crate::support::faults::{Failure, time_limit, within};
use crate::support::retry::Attempts;

/// How many times a batch's command is tried when the server fails it in a
/// way worth another attempt (a failover, a lost connection): a read
/// always, an update only when it certainly did not run or was declared
/// [`idempotent`](Backfill::idempotent).
pub(super) const BATCH_ATTEMPTS: Attempts = Attempts::at_most(5, Duration::from_millis(200));

/// How long one of a batch's commands may take outside a manager, where no
/// lease bounds it.
pub(super) const UNMANAGED_BOUND: Duration = Duration::from_secs(60);

/// The walk itself: the collection, the filter and the batch size.
pub(super) struct Walk {
    pub(super) collection: Collection<Document>,
    pub(super) filter: Document,
    pub(super) batch_size: u32,
    /// How long one of its commands may take.
    pub(super) bound: Duration,
    /// The update may be sent again when its outcome is unknown.
    pub(super) idempotent: bool,
}

/// The simple (binary) collation: the walk's `_id > last` and its sort must
/// agree with the order it checks, whatever the collection's default. Asked
/// for where a collation could change the comparison
/// ([`walk::read_needs_collation`], [`walk::update_needs_collation`]).
pub(super) fn binary() -> Collation {
    Collation::builder().locale("simple").build()
}

impl Walk {
    /// Where the walk starts: after the checkpoint a previous run of the
    /// migration saved, or, saved first under a manager, at the beginning
    /// with the expected total. Returns whether it resumed.
    pub(super) async fn begin(
        &self,
        managed: Option<&Managed>,
        name: Option<&str>,
    ) -> Result<(Checkpoint, bool), Error> {
        let collection = self.collection.name();
        let Some(managed) = managed else {
            info!(
                collection,
                "backfill outside a managed migration: it runs without checkpoints"
            );
            let mut checkpoint = Checkpoint::detached(collection);
            checkpoint.total = self.count().await?;
            return Ok((checkpoint, false));
        };
        let key = managed.checkpoints.claim(name.unwrap_or(collection));
        let (mut checkpoint, resumed) = managed.checkpoints.start(&key, collection).await;
        if !resumed {
            checkpoint.total = self.count().await?;
        }
        if resumed {
            info!(
                migration.id = managed.checkpoints.migration(),
                collection,
                done = checkpoint.visited,
                total = checkpoint.total,
                "resuming a backfill from its checkpoint"
            );
        } else {
            info!(
                migration.id = managed.checkpoints.migration(),
                collection,
                total = checkpoint.total,
                "starting a backfill"
            );
            // Saved before the first batch, so the backfill shows from the
            // start, with the server's time it started.
            checkpoint.started_at = Some(managed.checkpoints.save(&checkpoint).await?);
        }
        Ok((checkpoint, resumed))
    }

    /// The documents expected: a count of the filter, or the collection's
    /// estimated size when there is no filter; unknown (`None`) for a
    /// filter `countDocuments` refuses (`$where`, `$near`, `$nearSphere`),
    /// since the total only shows progress.
    pub(super) async fn count(&self) -> Result<Option<u64>, Error> {
        let action = || {
            format!(
                "count the documents the backfill of `{}` visits",
                self.collection.name()
            )
        };
        if walk::uncountable(&self.filter) {
            info!(
                collection = %self.collection.name(),
                "the backfill's filter cannot be counted (it uses `$where`, `$near` or \
                 `$nearSphere`): it runs without a total"
            );
            return Ok(None);
        }
        let counted = if self.filter.is_empty() {
            within(self.bound, self.collection.estimated_document_count()).await
        } else {
            within(self.bound, self.collection.count_documents(self.filter.clone())).await
        };
        counted.map(Some).map_err(|failure| failure.into_error(action()))
    }

    /// The `_id`s of the next batch, in order, after `last`, and whether
    /// they are the last: a batch that comes back short, even after a look
    /// into the `_id` types that sort later, ends the walk. `at` says which
    /// batch this is, for errors.
    pub(super) async fn next_ids(&self, last: Option<&Bson>, at: &str) -> Result<(Vec<Bson>, bool), Error> {
        let size = self.batch_size as usize;
        let collation = walk::read_needs_collation(&self.filter, last);
        let mut ids = self
            .find_ids(walk::after(&self.filter, last), size, collation, at)
            .await?;
        if ids.len() < size
            && let Some(tail) = ids.last().or(last).cloned()
        {
            // The bracket of `_id` types may be done, not the collection.
            match walk::beyond(&self.filter, &tail) {
                Beyond::Query(query) => {
                    let more = self.find_ids(query, size - ids.len(), true, at).await?;
                    ids.extend(more);
                }
                Beyond::End => {}
                Beyond::Unknown(alias) => {
                    return Err(self.batch_failed(
                        at,
                        format!(
                            "an `_id` of BSON type {alias} has no place in MongoDB's sort order, so \
                             the walk cannot tell what comes after it; it stopped instead of \
                             skipping what might"
                        )
                        .into(),
                    ));
                }
            }
        }
        if let Err(out_of_order) = order::check(last, &ids) {
            return Err(Error::BackfillOutOfOrder {
                collection: self.collection.name().to_owned(),
                at: at.to_owned(),
                place: out_of_order.place,
                before: out_of_order.before.to_owned(),
                after: out_of_order.after.to_owned(),
            });
        }
        let exhausted = ids.len() < size;
        Ok((ids, exhausted))
    }

    /// The walk's first read as a `find` command's fields (`filter`, `sort`,
    /// `projection`, `limit`, `collation`), for preflight to ask `explain`
    /// which plan the server gives it.
    pub(super) fn first_read(&self) -> Document {
        let mut read = doc! {
            "filter": walk::after(&self.filter, None),
            "sort": { "_id": 1 },
            "projection": { "_id": 1 },
            "limit": i64::from(self.batch_size),
        };
        if walk::read_needs_collation(&self.filter, None) {
            read.insert("collation", doc! { "locale": "simple" });
        }
        read
    }

    /// Up to `limit` `_id`s matching `query`, in `_id` order, under the
    /// simple collation when `collation` (see [`walk::read_needs_collation`]).
    pub(super) async fn find_ids(
        &self,
        query: Document,
        limit: usize,
        collation: bool,
        at: &str,
    ) -> Result<Vec<Bson>, Error> {
        let limit = convert::saturating_i64(limit);
        let batch = u32::try_from(limit).unwrap_or(u32::MAX);
        // A read changes nothing: another attempt is always safe.
        let query = &query;
        let read = |_| {
            let read = async move {
                let mut find = self
                    .collection
                    .find(query.clone())
                    .sort(doc! { "_id": 1 })
                    .projection(doc! { "_id": 1 })
                    .limit(limit)
                    .batch_size(batch)
                    .max_time(time_limit(self.bound));
                if collation {
                    find = find.collation(binary());
                }
                let mut cursor = find.await?;
                let mut ids = Vec::new();
                while cursor.advance().await? {
                    let document: Document = cursor.deserialize_current()?;
                    if let Some(id) = document.get("_id") {
                        ids.push(id.clone());
                    }
                }
                Ok(ids)
            };
            within(self.bound, read)
        };
        BATCH_ATTEMPTS
            .run(
                || true,
                Failure::is_transient,
                |failure, n| self.again("read", failure, n),
                read,
            )
            .await
            .map_err(|failure| self.failed(at, failure))
    }

    /// Changes the batch `ids` and adds its counts to `checkpoint`.
    pub(super) async fn change(
        &self,
        work: &mut Work<'_>,
        checkpoint: &mut Checkpoint,
        ids: Vec<Bson>,
        at: &str,
    ) -> Result<(), Error> {
        let count = ids.len() as u64;
        match work {
            Work::Update(update) => {
                let result = self.update(update, &ids, at).await?;
                checkpoint.matched = Some(checkpoint.matched.unwrap_or(0) + result.matched_count);
                checkpoint.modified = Some(checkpoint.modified.unwrap_or(0) + result.modified_count);
            }
            Work::EachBatch(work) => {
                work(self.collection.clone(), ids)
                    .await
                    .map_err(|source| self.batch_failed(at, error::shown(source)))?;
            }
        }
        checkpoint.visited += count;
        Ok(())
    }

    /// Updates the batch `ids`. A failure that certainly did not run is
    /// retried; one whose outcome is unknown is retried only for an
    /// [`idempotent`](Backfill::idempotent) update, and otherwise stops
    /// the walk without sending it again.
    pub(super) async fn update(
        &self,
        update: &UpdateModifications,
        ids: &[Bson],
        at: &str,
    ) -> Result<mongodb::results::UpdateResult, Error> {
        let filter = walk::batch(&self.filter, ids);
        let collation = walk::update_needs_collation(&self.filter, ids).then(binary);
        // Sent again only when it certainly did not run, or running it
        // twice changes nothing.
        let worth_another =
            |failure: &Failure| failure.is_transient() && (failure.did_not_run() || self.idempotent);
        let update = |_| {
            let mut sent = self.collection.update_many(filter.clone(), update.clone());
            if let Some(collation) = &collation {
                sent = sent.collation(collation.clone());
            }
            within(self.bound, sent)
        };
        let failure = match BATCH_ATTEMPTS
            .run(
                || true,
                worth_another,
                |failure, n| self.again("update", failure, n),
                update,
            )
            .await
        {
            Ok(result) => return Ok(result),
            Err(failure) => failure,
        };
        if failure.is_transient() && !failure.did_not_run() {
            // The run decides how many times it may have been applied.
            return Err(Error::BackfillOutcomeUnknown {
                collection: self.collection.name().to_owned(),
                at: at.to_owned(),
                at_most: None,
                counted: true,
                source: failure.into_source(format!("update a batch of `{}`", self.collection.name())),
            });
        }
        Err(self.failed(at, failure))
    }

    /// Logs that a batch's `command` failed and goes again.
    pub(super) fn again(&self, command: &str, failure: &impl std::fmt::Debug, attempt: u32) {
        warn!(
            error = ?failure,
            collection = %self.collection.name(),
            command,
            attempt,
            "a backfill's batch failed; trying it again"
        );
    }

    pub(super) fn failed(&self, at: &str, failure: Failure) -> Error {
        let source: BoxError = match failure {
            Failure::Server(error) => Box::new(ServerError::from(error)),
            timed_out => timed_out.into_source(format!("walk `{}`", self.collection.name())),
        };
        self.batch_failed(at, source)
    }

    pub(super) fn batch_failed(&self, at: &str, source: BoxError) -> Error {
        Error::BackfillFailed {
            collection: self.collection.name().to_owned(),
            at: at.to_owned(),
            source,
        }
    }
}

/// Which batch the walk is at, for errors and logs: by how many batches
/// and documents are done and the BSON type of the last `_id` done, never
/// its value (an `_id` can be an e-mail or another natural key).
pub(super) fn at(checkpoint: &Checkpoint) -> String {
    let Some(last) = &checkpoint.position else {
        return "its first batch".to_owned();
    };
    let batches = if checkpoint.batches == 1 {
        "batch"
    } else {
        "batches"
    };
    let documents = if checkpoint.visited == 1 {
        "document"
    } else {
        "documents"
    };
    format!(
        "its batch after {} {batches} ({} {documents} visited, the last `_id` of BSON type {})",
        checkpoint.batches,
        checkpoint.visited,
        bson_type(last)
    )
}

#[cfg(test)]
mod tests {
    use mongodb::bson::Bson;

    use super::at;
    use crate::stored::checkpoint::Checkpoint;

    fn checkpoint(position: Option<Bson>, batches: u64, visited: u64) -> Checkpoint {
        Checkpoint {
            migration: "0010_events_status".to_owned(),
            checksum: "0".to_owned(),
            key: "events".to_owned(),
            collection: "events".to_owned(),
            position,
            visited,
            matched: None,
            modified: None,
            batches,
            total: None,
            unanswered: 0,
            started_at: None,
            by: "api-1:1234".to_owned(),
        }
    }

    #[test]
    fn the_batch_a_walk_is_at_is_told_by_counts_and_types_never_values() {
        assert_eq!(at(&checkpoint(None, 0, 0)), "its first batch");
        assert_eq!(
            at(&checkpoint(
                Some(Bson::String("ada@example.org".to_owned())),
                2,
                200
            )),
            "its batch after 2 batches (200 documents visited, the last `_id` of BSON type string)"
        );
        // A null `_id` is a position like any other, not the start.
        assert_eq!(
            at(&checkpoint(Some(Bson::Null), 1, 1)),
            "its batch after 1 batch (1 document visited, the last `_id` of BSON type null)"
        );
    }
}
