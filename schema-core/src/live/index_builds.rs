//! The index builds in progress on a database, from the server's
//! `$currentOp`: one aggregation on `admin`, read-only.

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Document, doc};
use tracing::debug;

use crate::assess::progress::{self, IndexBuild};
use crate::support::faults::{Failure, within};

/// How long the read may take, cursor included: a third of the default
/// lease, as a bookkeeping command is given. A server that does not answer
/// in time reports nothing, like one that does not report operations.
pub(crate) const READ_BOUND: Duration = Duration::from_secs(10);

/// The `createIndexes` operations running on `db`, with their progress.
///
/// A server that does not report operations (no `$currentOp`, or a user
/// without the `inprog` privilege), or does not answer within
/// [`READ_BOUND`], yields none: progress is then unknown, which is no
/// reason to fail a status or a wait.
pub(crate) async fn read(db: &Database) -> Vec<IndexBuild> {
    let pipeline = [
        doc! { "$currentOp": { "allUsers": true, "idleConnections": false } },
        doc! { "$match": { "command.createIndexes": { "$exists": true } } },
    ];
    let admin = db.client().database("admin");
    let operations = async {
        admin
            .aggregate(pipeline)
            .await?
            .try_collect::<Vec<Document>>()
            .await
    };
    match within(READ_BOUND, operations).await {
        Ok(operations) => progress::index_builds(&operations, db.name()),
        Err(Failure::TimedOut(waited)) => {
            debug!(
                ?waited,
                "the server did not report its operations in time; index builds are unknown"
            );
            Vec::new()
        }
        Err(failure) => {
            debug!(
                ?failure,
                "the server does not report index builds; their progress is unknown"
            );
            Vec::new()
        }
    }
}
