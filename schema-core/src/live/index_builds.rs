//! The index builds in progress on a database, from the server's
//! `$currentOp` (one aggregation on `admin`), and, when there are some on
//! a replica set member, whether each waits for its commit quorum, from
//! the member's own record of its builds. Read-only.

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ReadPreference, SelectionCriteria};
use tracing::debug;

use crate::assess::commit_quorum::{self, CommitQuorumWait};
use crate::assess::progress::{self, IndexBuild};
use crate::support::faults::{Failure, within};
use crate::support::topology::Topology;

/// How long each read may take (the operations, then the commit quorums),
/// cursors included: a third of the default
/// lease, as a bookkeeping command is given. A server that does not answer
/// in time reports nothing, like one that does not report operations.
pub(crate) const READ_BOUND: Duration = Duration::from_secs(10);

/// The `createIndexes` operations running on `db`, with their progress.
///
/// A server that does not report operations (no `$currentOp`, or a user
/// without the `inprog` privilege), or does not answer within
/// [`READ_BOUND`], yields none: progress is then unknown, which is no
/// reason to fail a status or a wait. Whether a build waits for its commit
/// quorum is [`commit_quorum_waits`]'s answer, and unknown when it cannot
/// tell.
pub(crate) async fn read(db: &Database) -> Vec<IndexBuild> {
    let pipeline = [
        doc! { "$currentOp": { "allUsers": true, "idleConnections": false } },
        doc! { "$match": { "command.createIndexes": { "$exists": true } } },
    ];
    let admin = db.client().database("admin");
    let operations = async {
        // From the primary, where the build records and the `hello`
        // that judge its commit quorum are read too.
        admin
            .aggregate(pipeline)
            .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
            .await?
            .try_collect::<Vec<Document>>()
            .await
    };
    let mut builds = match within(READ_BOUND, operations).await {
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
    };
    if builds.is_empty() {
        return builds;
    }
    match within(READ_BOUND, commit_quorum_waits(db, &builds)).await {
        Ok(waits) => {
            for (build, wait) in builds.iter_mut().zip(waits) {
                build.commit_quorum = wait;
            }
        }
        Err(failure) => debug!(
            ?failure,
            "the member's record of its index builds could not be read; whether they wait for \
             their commit quorum is unknown"
        ),
    }
    builds
}

/// Whether each of `builds` waits for its commit quorum, in their order.
///
/// A `hello` first: a standalone server has no quorum, so none waits; a
/// `mongos` does not show the shards' records of their builds, so it is
/// unknown there. On a replica set member, the member's record of its
/// builds in progress, `config.system.indexBuilds` (the quorum and the
/// members that have voted to commit), and the identities of the builds'
/// collections (`listCollections`), all read from the primary. Reading
/// that record needs the `find` privilege on `config.system.indexBuilds`,
/// a system collection that an application's usual roles (`readWrite`,
/// `dbOwner`) do not reach: a custom role can grant it. Without it the
/// read is refused, and every build's wait stays unknown, never claimed.
async fn commit_quorum_waits(
    db: &Database,
    builds: &[IndexBuild],
) -> mongodb::error::Result<Vec<CommitQuorumWait>> {
    let primary = || SelectionCriteria::ReadPreference(ReadPreference::Primary);
    let every = |wait: CommitQuorumWait| vec![wait; builds.len()];
    let hello = db
        .run_command(doc! { "hello": 1 })
        .selection_criteria(primary())
        .await?;
    let topology = Topology::of(&hello);
    if topology.mongos {
        return Ok(every(CommitQuorumWait::Unknown));
    }
    if !topology.replica_set {
        return Ok(every(CommitQuorumWait::NotWaiting));
    }
    let Ok(member) = hello.get_str("me") else {
        return Ok(every(CommitQuorumWait::Unknown));
    };
    let records: Vec<Document> = db
        .client()
        .database("config")
        .collection::<Document>("system.indexBuilds")
        .find(doc! {})
        .selection_criteria(primary())
        .await?
        .try_collect()
        .await?;
    let mut names: Vec<&str> = builds.iter().map(|build| build.collection.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let listed: Vec<Document> = db
        .run_cursor_command(doc! { "listCollections": 1, "filter": { "name": { "$in": names } } })
        .selection_criteria(primary())
        .await?
        .try_collect()
        .await?;
    let uuid_of = |collection: &str| {
        listed
            .iter()
            .find(|listed| listed.get_str("name") == Ok(collection))
            .and_then(|listed| listed.get_document("info").ok())
            .and_then(|info| commit_quorum::uuid(info.get("uuid")))
    };
    let members: Vec<&str> = ["hosts", "passives"]
        .iter()
        .filter_map(|field| hello.get_array(field).ok())
        .flatten()
        .filter_map(Bson::as_str)
        .collect();
    if !commit_quorum::names_match(&records, &members) {
        return Ok(every(CommitQuorumWait::Unknown));
    }
    Ok(builds
        .iter()
        .map(|build| {
            commit_quorum::commit_quorum_wait(&build.indexes, uuid_of(&build.collection), &records, member)
        })
        .collect())
}
