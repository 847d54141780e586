//! `data::Backfill` against the server: the walk over integer, string and
//! ObjectId `_id`s, empty collections, filters matching nothing, batches
//! larger than the collection, the function form; and, under a manager,
//! the checkpoint after every batch, its removal with the completion, its
//! survival when the migration fails, and the resumed run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use schema_core::data::{Backfill, Progress};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use schema_core::{Error, Lane, Migrations, SchemaManager, migration};
use schema_tests::items::{insert, integers, tally};
use schema_tests::{documents, fresh_database, monitored_database, record_ids, take_commands};

async fn increment_all(db: &Database, batch_size: u32) -> schema_core::data::BackfillReport {
    Backfill::new(db, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(batch_size)
        .run()
        .await
        .expect("the backfill runs")
}

#[tokio::test]
async fn integer_ids_are_walked_once_each_in_batches() {
    let db = fresh_database("backfill_integers").await;
    // Both integer widths and a double: one bracket for the server.
    let ids = (10_000..11_200).map(|i| match i % 3 {
        0 => Bson::Int32(i),
        1 => Bson::Int64(i64::from(i)),
        _ => Bson::Double(f64::from(i) + 0.5),
    });
    insert(&db, "items", ids).await;
    let report = increment_all(&db, 500).await;
    assert_eq!((report.visited, report.batches), (1_200, 3));
    assert_eq!((report.matched, report.modified), (Some(1_200), Some(1_200)));
    assert_eq!(report.resumed_from, None);
    assert_eq!(tally(&db, "items").await, [(1, 1_200)].into());
}

#[tokio::test]
async fn string_ids_are_walked_once_each_in_batches() {
    let db = fresh_database("backfill_strings").await;
    insert(
        &db,
        "items",
        (0..1_050).map(|i| Bson::String(format!("user-{i:05}"))),
    )
    .await;
    let report = increment_all(&db, 100).await;
    assert_eq!((report.visited, report.batches), (1_050, 11));
    assert_eq!(tally(&db, "items").await, [(1, 1_050)].into());
}

#[tokio::test]
async fn object_ids_are_walked_once_each_in_batches() {
    let db = fresh_database("backfill_object_ids").await;
    insert(&db, "items", (0..2_001).map(|_| Bson::ObjectId(ObjectId::new()))).await;
    let report = increment_all(&db, 1_000).await;
    assert_eq!((report.visited, report.batches), (2_001, 3));
    assert_eq!(tally(&db, "items").await, [(1, 2_001)].into());
}

#[tokio::test]
async fn an_empty_collection_has_nothing_to_walk() {
    let db = fresh_database("backfill_empty").await;
    let report = increment_all(&db, 1_000).await;
    assert_eq!((report.visited, report.batches), (0, 0));
    assert_eq!((report.matched, report.modified), (None, None));
    assert!(documents(&db, "items").await.is_empty());
}

#[tokio::test]
async fn a_filter_matching_nothing_changes_nothing() {
    let db = fresh_database("backfill_no_match").await;
    insert(&db, "items", integers(300)).await;
    let report = Backfill::new(&db, "items")
        .filter(doc! { "k": 7 })
        .update(doc! { "$inc": { "n": 1 } })
        .run()
        .await
        .expect("the backfill runs");
    assert_eq!((report.visited, report.batches), (0, 0));
    assert_eq!(tally(&db, "items").await, [(0, 300)].into());
}

#[tokio::test]
async fn a_filter_narrows_the_walk_and_each_batch() {
    let db = fresh_database("backfill_filter").await;
    insert(&db, "items", integers(900)).await;
    let report = Backfill::new(&db, "items")
        .filter(doc! { "k": 1 })
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(100)
        .run()
        .await
        .expect("the backfill runs");
    assert_eq!((report.visited, report.batches), (300, 3));
    assert_eq!(tally(&db, "items").await, [(0, 600), (1, 300)].into());
    let changed = db
        .collection::<Document>("items")
        .count_documents(doc! { "n": 1, "k": 1 })
        .await
        .expect("count");
    assert_eq!(changed, 300, "exactly the documents the filter matches");
}

#[tokio::test]
async fn a_batch_larger_than_the_collection_is_one_batch() {
    let (db, sent) = monitored_database("backfill_one_batch").await;
    insert(&db, "items", integers(42)).await;
    take_commands(&sent);
    let report = increment_all(&db, 1_000).await;
    let names: Vec<String> = take_commands(&sent).into_iter().map(|(name, _)| name).collect();
    assert_eq!((report.visited, report.batches), (42, 1));
    assert_eq!(tally(&db, "items").await, [(1, 42)].into());
    // The expected total, the batch, a look for `_id`s of the types that
    // sort after integers (it came back short), and the batch's update,
    // which ends the walk; no checkpoint outside a manager.
    assert_eq!(names, ["count", "find", "find", "update"]);
}

#[tokio::test]
async fn the_function_form_is_handed_each_batch_in_id_order() {
    let db = fresh_database("backfill_function").await;
    insert(&db, "items", integers(250)).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = seen.clone();
    let report = Backfill::new(&db, "items")
        .batch_size(100)
        .for_each_batch(move |items, ids| {
            noted.lock().expect("not poisoned").push(ids.len());
            async move {
                items
                    .update_many(doc! { "_id": { "$in": ids } }, doc! { "$inc": { "n": 1 } })
                    .await
                    .map(drop)
            }
        })
        .run()
        .await
        .expect("the backfill runs");
    assert_eq!(*seen.lock().expect("not poisoned"), [100, 100, 50]);
    assert_eq!((report.visited, report.batches), (250, 3));
    assert_eq!((report.matched, report.modified), (None, None));
    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
}

#[tokio::test]
async fn a_backfill_that_cannot_run_says_why_before_sending_anything() {
    let (db, sent) = monitored_database("backfill_invalid").await;
    let nothing = Backfill::new(&db, "items")
        .run()
        .await
        .expect_err("nothing to do");
    assert!(matches!(nothing, Error::InvalidBackfill { .. }), "{nothing:?}");
    assert!(
        nothing
            .to_string()
            .contains("`update(...)` or `for_each_batch(...)`")
    );
    let zero = Backfill::new(&db, "items")
        .update(doc! { "$set": { "a": 1 } })
        .batch_size(0)
        .run()
        .await
        .expect_err("an empty batch");
    assert_eq!(zero.kind(), "invalid_backfill");
    assert!(take_commands(&sent).is_empty());
}

#[tokio::test]
async fn a_failing_batch_names_the_collection_and_where_it_stopped() {
    let db = fresh_database("backfill_failing").await;
    insert(&db, "items", integers(30)).await;
    let error = Backfill::new(&db, "items")
        .batch_size(10)
        .for_each_batch(|_, ids| async move {
            if ids.first() == Some(&Bson::Int32(10_020)) {
                return Err("the third batch refuses".into());
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .run()
        .await
        .expect_err("the third batch fails");
    // Where, by counts and BSON type: never the `_id` itself.
    assert_eq!(
        error.to_string(),
        "the backfill of `items` failed on its batch after 2 batches (20 documents visited, the \
         last `_id` of BSON type int)"
    );
    assert!(!format!("{error:?}").contains("10019"), "{error:?}");
    assert_eq!(error.kind(), "backfill_failed");
}

// Migrations applied by a manager, each in a group of its own.

/// Fails on the batch starting at this `_id`, once, when set.
static FAIL_AT: AtomicU64 = AtomicU64::new(u64::MAX);
static FAILED: AtomicBool = AtomicBool::new(false);

#[migration(id = "b_managed", group = "managed")]
async fn managed(db: &Database) -> Result<(), Error> {
    schema_tests::items::count_each(db, 100).await
}

#[migration(id = "b_resumed", group = "resumed")]
async fn resumed(db: &Database) -> Result<(), Error> {
    Backfill::new(db, "items")
        .batch_size(100)
        .for_each_batch(|items, ids| async move {
            let first = ids.first().and_then(Bson::as_i32).map(|n| n as u64);
            if first == Some(FAIL_AT.load(Ordering::SeqCst)) && !FAILED.swap(true, Ordering::SeqCst) {
                return Err::<(), Box<dyn std::error::Error + Send + Sync>>("the batch fails once".into());
            }
            items
                .update_many(doc! { "_id": { "$in": ids } }, doc! { "$inc": { "n": 1 } })
                .await?;
            Ok(())
        })
        .run()
        .await?;
    Ok(())
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid group"))
}

#[tokio::test]
async fn under_a_manager_every_batch_is_checkpointed_and_the_checkpoint_goes_with_the_completion() {
    let (db, sent) = monitored_database("backfill_managed").await;
    insert(&db, "items", integers(250)).await;
    let observed: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let noted = observed.clone();
    take_commands(&sent);
    manager(&db, "managed")
        .on_progress(move |progress| noted.lock().expect("not poisoned").push(progress.clone()))
        .apply_all()
        .await
        .expect("apply");

    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_managed"]);
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "lock and checkpoint gone"
    );

    let commands = take_commands(&sent);
    let backfill: Vec<(&str, &str)> = commands
        .iter()
        .map(|(name, target)| (name.as_str(), target.as_str()))
        .skip_while(|command| *command != ("count", "items"))
        .take_while(|command| *command != ("insert", "schema_versions"))
        .collect();
    let checkpoint = ("findAndModify", "schema_lock");
    // The expected total (no filter: the estimated count), the checkpoint
    // before the first batch, then each batch: its `_id`s, its update, its
    // checkpoint. The short last batch looks into later `_id` types first.
    let mut expected = vec![("count", "items"), checkpoint];
    for _ in 0..2 {
        expected.extend([("find", "items"), ("update", "items"), checkpoint]);
    }
    expected.extend([
        ("find", "items"),
        ("find", "items"),
        ("update", "items"),
        checkpoint,
    ]);
    // The fence of the completion, which also removes the checkpoint.
    expected.push(checkpoint);
    assert_eq!(backfill, expected, "all commands: {commands:?}");

    let observed = observed.lock().expect("not poisoned");
    let done: Vec<u64> = observed.iter().map(|progress| progress.done).collect();
    // At the start, after each batch, and at the end.
    assert_eq!(done, [0, 100, 200, 250, 250]);
    assert!(observed.iter().all(|progress| progress.total == Some(250)));
    assert_eq!(observed.last().map(|progress| progress.finished), Some(true));
    assert_eq!(observed[0].migration.as_deref(), Some("b_managed"));
    assert_eq!(observed[0].key, "items");
}

#[tokio::test]
async fn a_failed_migration_keeps_its_checkpoint_and_the_next_start_resumes_there() {
    let db = fresh_database("backfill_resumed").await;
    insert(&db, "items", integers(500)).await;
    FAIL_AT.store(10_300, Ordering::SeqCst);

    let error = manager(&db, "resumed")
        .apply_all()
        .await
        .expect_err("the fourth batch fails");
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "b_resumed"),
        "{error:?}"
    );
    assert!(FAILED.load(Ordering::SeqCst), "the batch failed");
    // Three batches done, the lock kept for its checkpoint.
    assert_eq!(tally(&db, "items").await, [(0, 200), (1, 300)].into());
    let lock = documents(&db, "schema_lock").await;
    assert_eq!(lock.len(), 1, "{lock:?}");
    // Let go, released, so the next start takes it at once.
    assert_eq!(lock[0].get_str("phase"), Ok("released"), "{lock:?}");
    let status = manager(&db, "resumed").status().await.expect("status");
    assert_eq!(status.backfills.len(), 1, "{status:?}");
    let backfill = &status.backfills[0];
    assert_eq!(
        (
            backfill.migration.as_str(),
            backfill.key.as_str(),
            backfill.done,
            backfill.total
        ),
        ("b_resumed", "items", 300, Some(500))
    );
    // Where it stands by counts and type: the last `_id` done (10299) is
    // in the database, never in status or its JSON.
    assert_eq!(
        (backfill.batches, backfill.last_id_type.as_deref()),
        (3, Some("int"))
    );
    let json = serde_json::to_string(&status).expect("status as JSON");
    assert!(json.contains("\"last_id_type\":\"int\""), "{json}");
    assert!(!json.contains("10299"), "{json}");
    assert!(backfill.started_at.is_some() && backfill.updated_at.is_some());

    // `unlock` clears the holder but keeps what the next start resumes from.
    assert!(manager(&db, "resumed").unlock(Lane::Start).await.expect("unlock"));
    let lock = manager(&db, "resumed").lock_status().await.expect("lock status");
    assert!(lock.background.is_none(), "{lock:?}");
    let kept = lock.start.expect("the lock stays for its checkpoint").backfills;
    assert_eq!(
        kept.iter().map(|backfill| backfill.done).collect::<Vec<_>>(),
        [300]
    );

    manager(&db, "resumed")
        .apply_all()
        .await
        .expect("the next start finishes");
    assert_eq!(
        tally(&db, "items").await,
        [(1, 500)].into(),
        "no document done twice"
    );
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_resumed"]);
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "lock and checkpoint gone"
    );
}

/// Integer `_id`s from 0, of every digit count: a server that sorts them
/// as text returns a batch out of `_id` order, and the walk must stop and
/// say so instead of skipping the documents `_id > last` would pass over.
/// MongoDB sorts them as numbers, and the walk visits each once.
#[tokio::test]
async fn a_batch_out_of_id_order_stops_the_walk_instead_of_skipping_documents() {
    let db = fresh_database("backfill_out_of_order").await;
    insert(&db, "items", (0..2_000).map(Bson::Int32)).await;
    let outcome = Backfill::new(&db, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(500)
        .run()
        .await;
    match schema_tests::server::kind(&db).await {
        schema_tests::server::ServerKind::Real => {
            let report = outcome.expect("MongoDB returns numbers in order");
            assert_eq!(report.visited, 2_000);
            assert_eq!(tally(&db, "items").await, [(1, 2_000)].into());
        }
        schema_tests::server::ServerKind::Emulator => {
            // The fault: the emulator sorts these `_id`s as text.
            let error = outcome.expect_err("the first batch comes back in text order");
            assert_eq!(error.kind(), "backfill_out_of_order", "{error:?}");
            let message = error.to_string();
            assert!(message.contains("out of `_id` order"), "{message}");
            assert!(message.contains("nothing was skipped"), "{message}");
            // Stopped before changing the batch it could not trust.
            assert_eq!(tally(&db, "items").await, [(0, 2_000)].into());
        }
    }
}

/// A declared idempotent update whose reply was lost is sent again, and
/// the walk goes on.
#[tokio::test(flavor = "multi_thread")]
async fn an_idempotent_update_whose_reply_was_lost_is_sent_again() {
    let db = fresh_database("backfill_idempotent").await;
    insert(&db, "items", integers(300)).await;
    let proxy = schema_tests::proxy::FaultProxy::in_front_of(&schema_tests::uri()).await;
    let lost = proxy.add(
        schema_tests::proxy::Rule::new(
            schema_tests::proxy::Match::command("update").on("items"),
            schema_tests::proxy::Fault::DropReply,
        )
        .times(1),
    );
    let report = Backfill::new(&proxy.database(&db).await, "items")
        .update(doc! { "$set": { "n": 1 } })
        .batch_size(100)
        .idempotent(true)
        .run()
        .await
        .expect("the lost reply is retried");
    assert_eq!(lost.hits(), 1, "the first batch's reply was lost");
    assert_eq!(report.visited, 300);
    assert_eq!(tally(&db, "items").await, [(1, 300)].into());
}

/// A failover in the middle of a batch's update (the server interrupted
/// it) leaves its outcome unknown: the walk stops, naming the batch. A
/// primary that refused the update before running it is tried again.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_during_an_update_stops_the_walk_and_a_refusal_before_it_is_tried_again() {
    use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
    let db = fresh_database("backfill_failover").await;
    insert(&db, "items", integers(300)).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let through = proxy.database(&db).await;

    let refused = proxy.add(
        Rule::new(
            Match::command("update").on("items"),
            Fault::not_writable_primary(),
        )
        .times(1),
    );
    let report = Backfill::new(&through, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(100)
        .run()
        .await
        .expect("a refusal before running is tried again");
    assert_eq!(refused.hits(), 1);
    assert_eq!(report.visited, 300);
    assert_eq!(tally(&db, "items").await, [(1, 300)].into());

    let interrupted = proxy.add(
        Rule::new(
            Match::command("update").on("items"),
            Fault::error(
                11602,
                "InterruptedDueToReplStateChange",
                "operation was interrupted",
            ),
        )
        .times(1),
    );
    let error = Backfill::new(&through, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(100)
        .run()
        .await
        .expect_err("an interrupted update's outcome is unknown");
    assert_eq!(interrupted.hits(), 1);
    assert_eq!(error.kind(), "backfill_outcome_unknown", "{error:?}");
    let message = error.to_string();
    assert!(message.contains("to the update of its first batch"), "{message}");
    // Outside a manager no later run does it as a matter of course.
    assert!(
        message.contains("it was not sent again, and the batches before it are done"),
        "{message}"
    );
}

#[migration(id = "b_forever", group = "backfill_forever")]
async fn under_a_lease_without_end(db: &Database) -> Result<(), Error> {
    schema_tests::items::count_each(db, 100).await
}

/// A lease of `Duration::MAX` (documented as forever) bounds a backfill's
/// commands too: their `maxTimeMS` is capped at the longest the server
/// accepts, a 32-bit count of milliseconds, instead of failing in the
/// driver (past 64 bits) or at the server (past 32, a lease over about 25
/// days).
#[tokio::test]
async fn a_backfill_under_a_lease_of_duration_max_bounds_its_reads_as_the_server_allows() {
    let (db, sent) = monitored_database("backfill_forever").await;
    insert(&db, "items", integers(250)).await;
    schema_tests::take_command_documents(&sent);
    SchemaManager::new(db.clone())
        .migrations(Migrations::group("backfill_forever").expect("a valid group"))
        .lock_lease(std::time::Duration::MAX)
        .apply_all()
        .await
        .expect("apply");
    let limits: Vec<i64> = schema_tests::take_command_documents(&sent)
        .iter()
        .filter(|command| command.get_str("find") == Ok("items"))
        .map(|command| match command.get("maxTimeMS") {
            Some(Bson::Int32(limit)) => i64::from(*limit),
            Some(Bson::Int64(limit)) => *limit,
            other => panic!("a batch's read without a time limit: {other:?}"),
        })
        .collect();
    assert!(limits.len() >= 3, "each batch's read was sent: {limits:?}");
    assert!(
        limits.iter().all(|limit| *limit == i64::from(i32::MAX)),
        "each batch's read, capped: {limits:?}"
    );
    assert_eq!(tally(&db, "items").await, [(1, 250)].into());
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_forever"]);
}
