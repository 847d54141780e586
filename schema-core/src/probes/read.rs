//! The reads every probe makes, each bounded by the probe's `maxTimeMS`
//! on the server and a little more on the client, and what to say when one
//! cannot answer: a probe that times out or is refused is inconclusive,
//! never clean.

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::action::Action;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{Collation, ReadPreference, SelectionCriteria};

use super::{Probe, SHOWN_IDS};
use crate::support::convert;
use crate::support::error::{ServerError, code};
use crate::support::faults::{Failure, MAX_TIME_EXPIRED, within};

/// How much longer than `maxTimeMS` the client waits for an answer: the
/// time to get the reply back, and to reach the server first.
const CLIENT_MARGIN: Duration = Duration::from_secs(5);

impl Probe {
    /// How many documents of `collection` match `filter`.
    pub(super) async fn count(&self, collection: &str, filter: Document) -> Result<u64, String> {
        let collection = self.db.collection::<Document>(collection);
        let command = collection.count_documents(filter).max_time(self.max_time);
        self.bounded(command).await
    }

    /// The estimated number of documents of `collection`, from its
    /// metadata: no scan.
    pub(super) async fn estimated(&self, collection: &str) -> Result<u64, String> {
        let collection = self.db.collection::<Document>(collection);
        let command = collection.estimated_document_count().max_time(self.max_time);
        self.bounded(command).await
    }

    /// What `pipeline` returns on `collection`, spilling to disk when it
    /// must, under `collation` (the collection's default when `None`):
    /// strings are matched and grouped as an index with that collation
    /// compares them.
    pub(super) async fn aggregate_collated(
        &self,
        collection: &str,
        pipeline: Vec<Document>,
        collation: Option<Collation>,
    ) -> Result<Vec<Document>, String> {
        let collection = self.db.collection::<Document>(collection);
        let read = async {
            collection
                .aggregate(pipeline)
                .allow_disk_use(true)
                .max_time(self.max_time)
                .optional(collation, |aggregate, collation| aggregate.collation(collation))
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        self.bounded(read).await
    }

    /// What `pipeline` returns on `collection`, read from the primary (each
    /// shard's primary through a `mongos`) whatever the probes' read
    /// preference: for what each member counts for itself, such as
    /// `$indexStats`.
    pub(super) async fn aggregate_on_primary(
        &self,
        collection: &str,
        pipeline: Vec<Document>,
    ) -> Result<Vec<Document>, String> {
        let collection = self.db.collection::<Document>(collection);
        let primary = SelectionCriteria::ReadPreference(ReadPreference::Primary);
        let read = async {
            collection
                .aggregate(pipeline)
                .selection_criteria(primary)
                .max_time(self.max_time)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        self.bounded(read).await
    }

    /// A few `_id`s of the documents of `collection` that match `filter`,
    /// when findings are to show them; none otherwise.
    pub(super) async fn ids(&self, collection: &str, filter: Document) -> Result<Vec<Bson>, String> {
        if !self.show_ids {
            return Ok(Vec::new());
        }
        let collection = self.db.collection::<Document>(collection);
        let read = async {
            collection
                .find(filter)
                .projection(doc! { "_id": 1 })
                .limit(SHOWN_IDS as i64)
                .max_time(self.max_time)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let found = self.bounded(read).await?;
        Ok(found.into_iter().filter_map(|mut d| d.remove("_id")).collect())
    }

    /// Runs `command` on the database, bounded as the reads are, where the
    /// reads go (a `run_command` goes to the primary unless told).
    pub(super) async fn command(&self, mut command: Document) -> Result<Document, String> {
        command.insert("maxTimeMS", convert::millis(self.max_time));
        let run = self
            .db
            .run_command(command)
            .optional(self.db.selection_criteria().cloned(), |run, criteria| {
                run.selection_criteria(criteria)
            });
        self.bounded(run).await
    }

    /// `read`'s answer, or why there is none: the client waits for it as
    /// long as its `maxTimeMS`, then the time for the reply to come back.
    async fn bounded<T>(
        &self,
        read: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, String> {
        within(self.max_time.saturating_add(CLIENT_MARGIN), read)
            .await
            .map_err(|failure| self.reason(failure))
    }

    /// Why a read could not answer, in words for the report, without the
    /// values a server's message may quote.
    pub(super) fn reason(&self, failure: Failure) -> String {
        match failure {
            Failure::TimedOut(waited) => format!(
                "no answer within {} s; the server may be busy or unreachable",
                waited.as_secs()
            ),
            Failure::Server(error) => match code(&error) {
                Some(MAX_TIME_EXPIRED) => format!(
                    "it ran longer than its {} s (`--max-time`): raise it, or run preflight \
                     against a secondary",
                    self.max_time.as_secs_f64()
                ),
                _ => ServerError::from(error).to_string(),
            },
        }
    }
}
