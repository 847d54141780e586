//! Backfill batches as transactions, where the server runs them: on a
//! real replica set (the workflow `mongodb.yml`), and on the emulator the
//! tests may run on, which reports itself standalone, with the lock's own
//! `hello` answered as a replica set member would answer it. The driver
//! then sends each batch as a transaction, which the emulator commits and
//! aborts. It does not isolate them (another client's write can land
//! inside a transaction, on the one connection it keeps), so these tests
//! run one at a time, and check the commit and abort paths, not isolation,
//! which only a real replica set shows.

use std::sync::atomic::{AtomicUsize, Ordering};

use schema_core::data::Backfill;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::items::{insert, integers, tally};
use schema_tests::{documents, fresh_database, record_ids};

/// One at a time: the emulator's transactions are not isolated.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid group"))
}

#[migration(id = "b_transactions", group = "transactions")]
async fn transactions(db: &Database) -> Result<(), Error> {
    Backfill::new(db, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(100)
        .run()
        .await?;
    Ok(())
}

/// A proxy in front of a server that runs transactions: a real replica
/// set as it is, or the emulator with the lock's own `hello` (the one sent
/// to `db`, not the driver's to `admin`) answered as a replica set's
/// primary would answer it. `None`, with the reason printed, on a real
/// standalone server, which runs no transaction.
async fn as_replica_set(db: &Database) -> Option<schema_tests::proxy::FaultProxy> {
    use schema_tests::proxy::{Answer, Fault, FaultProxy, Match, Rule};
    use schema_tests::server::{ServerKind, is_replica_set, kind};
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    match kind(db).await {
        ServerKind::Real if is_replica_set(db).await => {}
        ServerKind::Real => {
            println!("skipped: a standalone MongoDB server runs no transaction; run on a replica set");
            return None;
        }
        ServerKind::Emulator => {
            let name = db.name().to_owned();
            proxy.add(Rule::new(
                Match::command("hello").when(move |body| body.get_str("$db") == Ok(name.as_str())),
                Fault::Answer(Answer::new(|_| {
                    doc! {
                        "ok": 1.0, "isWritablePrimary": true, "setName": "rs0",
                        "localTime": DateTime::now(), "maxWireVersion": 21,
                        "logicalSessionTimeoutMinutes": 30,
                    }
                })),
            ));
        }
    }
    Some(proxy)
}

/// Whether `body` is a statement of a transaction.
fn in_transaction(body: &Document) -> bool {
    body.get_bool("autocommit") == Ok(false)
}

fn transaction_commands(proxy: &schema_tests::proxy::FaultProxy) -> Vec<(String, String)> {
    proxy
        .seen()
        .into_iter()
        .filter(|seen| in_transaction(&seen.body))
        .map(|seen| (seen.command, seen.target))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_replica_set_each_batch_and_its_checkpoint_commit_as_one_transaction() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_transactions").await;
    let Some(proxy) = as_replica_set(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect("apply");

    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.extend([
            ("update".to_owned(), "items".to_owned()),
            ("findAndModify".to_owned(), "schema_lock".to_owned()),
            ("commitTransaction".to_owned(), String::new()),
        ]);
    }
    assert_eq!(transaction_commands(&proxy), expected);
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_commit_reply_does_not_apply_a_batch_twice() {
    use schema_tests::proxy::{Fault, Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_lost_commit").await;
    let Some(proxy) = as_replica_set(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    // The second batch's commit lands, and its reply is lost.
    let commits = AtomicUsize::new(0);
    let lost = proxy.add(
        Rule::new(
            Match::command("commitTransaction").when(move |_| commits.fetch_add(1, Ordering::SeqCst) == 1),
            Fault::DropReply,
        )
        .times(1),
    );
    manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(lost.hits(), 1, "the second commit's reply was lost");
    assert_eq!(tally(&db, "items").await, [(1, 250)].into(), "each batch once");
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_transactions"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_checkpoint_finds_the_lock_another_s_is_not_applied() {
    use schema_tests::proxy::{Fault, Match, Rule};
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = fresh_database("backfill_lost_in_transaction").await;
    let Some(proxy) = as_replica_set(&db).await else {
        return;
    };
    insert(&db, "items", integers(250)).await;
    // The second batch's checkpoint matches nothing, as when another
    // process took the lock over while the batch ran.
    let saves = AtomicUsize::new(0);
    let taken = proxy.add(
        Rule::new(
            Match::command("findAndModify")
                .on("schema_lock")
                .when(move |body| in_transaction(body) && saves.fetch_add(1, Ordering::SeqCst) == 1),
            Fault::Reply(
                doc! { "ok": 1.0, "value": null, "lastErrorObject": { "n": 0, "updatedExisting": false } },
            ),
        )
        .times(1),
    );
    let error = manager(&proxy.database(&db).await, "transactions")
        .apply_all()
        .await
        .expect_err("the lease is lost");
    assert_eq!(taken.hits(), 1, "the second batch's checkpoint matched nothing");
    assert_eq!(error.kind(), "lock_lost", "{error:?}");
    // Nothing committed the second batch: its transaction was aborted.
    let seen = proxy.seen();
    let taken_at = seen
        .iter()
        .position(|command| command.command == "findAndModify" && in_transaction(&command.body))
        .and_then(|first| {
            seen.iter()
                .skip(first + 1)
                .position(|command| command.command == "findAndModify" && in_transaction(&command.body))
                .map(|second| first + 1 + second)
        })
        .expect("the second batch's checkpoint was sent");
    let after: Vec<&str> = seen[taken_at..]
        .iter()
        .filter(|command| in_transaction(&command.body))
        .map(|command| command.command.as_str())
        .collect();
    assert_eq!(after, ["findAndModify", "abortTransaction"]);
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    // The first batch committed; the second, rolled back with its
    // aborted transaction, changed nothing.
    assert_eq!(tally(&db, "items").await, [(0, 150), (1, 100)].into());
}
