//! The index builds in progress on a database, from the server's
//! `$currentOp`: one aggregation on `admin`, read-only.

use futures_util::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Document, doc};
use tracing::debug;

use crate::assess::progress::{self, IndexBuild};

/// The `createIndexes` operations running on `db`, with their progress.
///
/// A server that does not report operations (no `$currentOp`, or a user
/// without the `inprog` privilege) yields none: progress is then unknown,
/// which is no reason to fail a status or a wait.
pub(crate) async fn read(db: &Database) -> Vec<IndexBuild> {
    let pipeline = [
        doc! { "$currentOp": { "allUsers": true, "idleConnections": false } },
        doc! { "$match": { "command.createIndexes": { "$exists": true } } },
    ];
    let admin = db.client().database("admin");
    let operations: Result<Vec<Document>, _> =
        async { admin.aggregate(pipeline).await?.try_collect().await }.await;
    match operations {
        Ok(operations) => progress::index_builds(&operations, db.name()),
        Err(error) => {
            debug!(%error, "the server does not report index builds; their progress is unknown");
            Vec::new()
        }
    }
}
