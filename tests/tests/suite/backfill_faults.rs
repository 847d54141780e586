//! Backfills under faults, with real processes of `backfill-worker`: a
//! holder killed (SIGKILL) in the middle of a backfill of 4,000 documents in
//! forty batches, and a holder paused (SIGSTOP) past its lease. The worker's update adds 1
//! to each document, so a batch done twice shows. Each test first proves
//! that its fault happened at that point of the backfill (the checkpoint
//! in the lock shows the batches done), then asserts what the collection
//! holds: every document changed, at most one batch twice.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::{Duration, Instant};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::workers::{Worker, finish, kill, line, lock_document, signal, text};
use schema_tests::{documents, fresh_database, record_ids};

const WORKER: &str = env!("CARGO_BIN_EXE_backfill-worker");
/// Forty batches: enough to stop a holder after a few of them and still be
/// in the middle of the walk. The emulator the tests may run on scans the
/// collection for each `_id` range read, so each batch costs time in
/// proportion to the whole collection: a small one keeps the walk short.
const DOCUMENTS: usize = 4_000;
const BATCH: u64 = 100;
/// Five seconds: the emulator answers one command at a time and scans the
/// collection for each `_id` range read, and the other tests of the suite
/// use it meanwhile, so renewals of a short lease queue behind the
/// backfill's reads.
const LEASE_MS: u64 = 5_000;

/// One scenario at a time: each backfills its collection on a server that
/// answers one command at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(180)
}

async fn setup(test: &str) -> Database {
    setup_with(test, DOCUMENTS).await
}

/// A database with `count` items, each with `n: 0`.
async fn setup_with(test: &str, count: usize) -> Database {
    let db = fresh_database(test).await;
    let items: Vec<Document> = (0..count)
        .map(|_| doc! { "_id": ObjectId::new(), "n": 0 })
        .collect();
    for chunk in items.chunks(5_000) {
        db.collection::<Document>("items")
            .insert_many(chunk.to_vec())
            .await
            .expect("insert the items");
    }
    db
}

/// The backfill's checkpoint in the lock: `(batches, visited, by)`.
async fn checkpoint(db: &Database) -> Option<(i64, i64, String)> {
    let lock = lock_document(db).await?;
    let entry = lock
        .get_array("checkpoints")
        .ok()?
        .first()?
        .as_document()?
        .clone();
    let count = |field: &str| match entry.get(field) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        _ => -1,
    };
    Some((
        count("batches"),
        count("visited"),
        entry.get_str("by").ok()?.to_owned(),
    ))
}

/// Waits until the checkpoint shows at least `batches` batches saved by
/// the process `pid`.
async fn wait_for_batches(db: &Database, child: &mut std::process::Child, batches: i64) -> (i64, i64) {
    let until = deadline();
    let pid = format!(":{}", child.id());
    loop {
        if let Some((done, visited, by)) = checkpoint(db).await
            && done >= batches
            && by.ends_with(&pid)
        {
            return (done, visited);
        }
        if let Some(status) = child.try_wait().expect("poll the worker") {
            let mut output = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut output);
            }
            panic!(
                "the worker exited ({status}) before {batches} batches; the lock: {:?}\n{output}",
                lock_document(db).await
            );
        }
        assert!(Instant::now() < until, "{batches} batches in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many items have each value of `n`.
async fn tally(db: &Database) -> BTreeMap<i64, usize> {
    schema_tests::items::tally(db, "items")
        .await
        .into_iter()
        .map(|(n, count)| (n, count as usize))
        .collect()
}

/// Every item changed, once, except at most one batch of them twice; the
/// migration recorded once and the lock (with its checkpoint) gone.
async fn assert_each_item_changed_and_at_most_one_batch_twice(db: &Database) {
    let tally = tally(db).await;
    let once = tally.get(&1).copied().unwrap_or(0);
    let twice = tally.get(&2).copied().unwrap_or(0);
    assert_eq!(
        once + twice,
        DOCUMENTS,
        "every item changed once or twice: {tally:?}"
    );
    assert!(twice as u64 <= BATCH, "at most one batch twice: {tally:?}");
    assert_eq!(record_ids(db, "schema_versions").await, ["f_0001_backfill"]);
    assert!(
        documents(db, "schema_lock").await.is_empty(),
        "lock and checkpoint gone"
    );
}

fn resumed_from(output: &std::process::Output) -> u64 {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = line(&stdout, "visited").unwrap_or_default().to_owned();
    let resumed = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("resumed_from="))
        .unwrap_or("none");
    resumed
        .parse()
        .unwrap_or_else(|_| panic!("the waiter resumed: {}", text(output)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_killed_in_the_middle_of_a_backfill_is_resumed_by_the_next_process() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = setup("backfill_killed").await;
    let mut holder = Worker::new(WORKER, &db, LEASE_MS)
        .env("BACKFILL_BATCH", BATCH)
        .env("BACKFILL_RATE", 4_000)
        .spawn();
    wait_for_batches(&db, &mut holder, 5).await;
    // The fault: killed by the signal, with at least five batches saved.
    kill(holder, deadline());
    let (batches, visited, _) = checkpoint(&db).await.expect("the checkpoint stays with the lock");
    assert!(batches >= 5, "killed after {batches} batches");
    assert!(
        (visited as u64) < DOCUMENTS as u64,
        "killed before the end: {visited}"
    );

    let waiter = finish(Worker::new(WORKER, &db, LEASE_MS).spawn(), deadline());
    assert!(waiter.status.success(), "{}", text(&waiter));
    let stdout = String::from_utf8_lossy(&waiter.stdout).into_owned();
    assert_eq!(line(&stdout, "applied"), Some("f_0001_backfill"));
    assert_eq!(line(&stdout, "interrupted"), Some("f_0001_backfill"));
    let resumed = resumed_from(&waiter);
    assert!(
        resumed >= visited as u64,
        "resumed from the last checkpoint ({resumed} >= {visited})"
    );
    assert_each_item_changed_and_at_most_one_batch_twice(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_paused_past_its_lease_is_resumed_and_moves_no_checkpoint_when_it_wakes() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = setup("backfill_paused").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let saves = Match::command("findAndModify").on("schema_lock").when(|body| {
        body.get_document("update")
            .and_then(|update| update.get_document("$set"))
            .is_ok_and(|set| set.contains_key("checkpoints"))
    });
    let mut holder = Worker::new(WORKER, &db, LEASE_MS)
        .through(&proxy.uri())
        .env("BACKFILL_BATCH", BATCH)
        .env("BACKFILL_RATE", 4_000)
        .spawn();
    wait_for_batches(&db, &mut holder, 3).await;
    signal(&holder, "STOP");
    // What reached the server before the pause took hold.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, paused_at, _) = checkpoint(&db).await.expect("a checkpoint");
    let saved_before_waking = proxy.count(&saves);
    assert!(
        saved_before_waking >= 4,
        "{saved_before_waking} saves before the pause"
    );

    // The next process takes over once the lease ends and resumes; it is
    // slowed so that it is still at work when the paused one wakes.
    let mut waiter = Worker::new(WORKER, &db, LEASE_MS)
        .env("BACKFILL_BATCH", BATCH)
        .env("BACKFILL_RATE", 1_000)
        .spawn();
    let (_, taken_at) = wait_for_batches(&db, &mut waiter, 1).await;
    assert!(
        taken_at >= paused_at,
        "resumed, not restarted: {taken_at} >= {paused_at}"
    );
    signal(&holder, "CONT");
    let holder = finish(holder, deadline());
    let waiter_still_running = waiter.try_wait().expect("poll the waiter").is_none();
    let waiter = finish(waiter, deadline());

    assert!(!holder.status.success(), "{}", text(&holder));
    assert!(
        text(&holder).contains("lost the schema lock while applying `f_0001_backfill`"),
        "{}",
        text(&holder)
    );
    assert_eq!(
        proxy.count(&saves),
        saved_before_waking,
        "the woken holder sent no checkpoint"
    );
    assert!(waiter_still_running, "the holder woke while the waiter worked");
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert!(resumed_from(&waiter) >= paused_at as u64);
    assert_each_item_changed_and_at_most_one_batch_twice(&db).await;
}

/// The body of a checkpoint save whose (first) checkpoint counts `batches`.
fn saves_batches(body: &Document, batches: i64) -> bool {
    let saved = body
        .get_document("update")
        .and_then(|update| update.get_document("$set"))
        .and_then(|set| set.get_array("checkpoints"))
        .ok()
        .and_then(|checkpoints| checkpoints.first())
        .and_then(Bson::as_document)
        .and_then(|checkpoint| match checkpoint.get("batches") {
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(Bson::Int64(n)) => Some(*n),
            _ => None,
        });
    saved == Some(batches)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_write_that_lands_after_later_ones_never_moves_the_checkpoint_back() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = setup("backfill_late_checkpoint").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let lock_writes = || Match::command("findAndModify").on("schema_lock");
    // The save after the second batch is held: the holder gives up on it,
    // saves again and goes on.
    let late = proxy.add(Rule::new(lock_writes().when(|body| saves_batches(body, 2)), Fault::Hold).times(1));
    let mut holder = Worker::new(WORKER, &db, LEASE_MS)
        .through(&proxy.uri())
        .env("BACKFILL_BATCH", BATCH)
        .env("BACKFILL_RATE", 4_000)
        .spawn();
    assert!(late.wait_for_hits(1, Duration::from_secs(120)).await);
    assert_eq!(late.held(), 1, "the save after the second batch is held");
    wait_for_batches(&db, &mut holder, 6).await;

    // Later writes are held from now on, so the lock stays as it is...
    let frozen = proxy.add(Rule::new(lock_writes(), Fault::Hold));
    assert!(frozen.wait_for_hits(1, Duration::from_secs(60)).await);
    let (before, _, _) = checkpoint(&db).await.expect("a checkpoint");
    assert!(before >= 6, "{before} batches saved past the held save");
    // ... while the held save, from before all of them, lands now.
    late.release();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, _, _) = checkpoint(&db).await.expect("a checkpoint");
    assert_eq!(after, before, "the late save did not move the checkpoint back");

    kill(holder, deadline());
    frozen.release();
    let waiter = finish(Worker::new(WORKER, &db, LEASE_MS).spawn(), deadline());
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert!(resumed_from(&waiter) >= before as u64 * BATCH);
    assert_each_item_changed_and_at_most_one_batch_twice(&db).await;
}

/// The tally of a smaller walk: every one of `count` items changed, once
/// or twice, and exactly `twice` of them twice.
async fn assert_changed_once_except(db: &Database, count: usize, twice: usize) {
    let tally = tally(db).await;
    assert_eq!(
        tally,
        [(1, count - twice), (2, twice)]
            .into_iter()
            .filter(|(_, items)| *items > 0)
            .collect(),
        "each item once, one batch twice at the most"
    );
    assert_eq!(record_ids(db, "schema_versions").await, ["f_0001_backfill"]);
}

/// The holder stopped at a batch whose update's outcome was unknown; the
/// next process, without faults, does that batch once more and the rest.
async fn stopped_then_redone(db: &Database, holder: &std::process::Output, count: usize, batch: usize) {
    assert!(
        text(holder).contains("so it may or may not have been applied"),
        "{}",
        text(holder)
    );
    let waiter = finish(
        Worker::new(WORKER, db, 2_000)
            .env("BACKFILL_BATCH", batch)
            .spawn(),
        deadline(),
    );
    assert!(waiter.status.success(), "{}", text(&waiter));
    assert_changed_once_except(db, count, batch).await;
}

/// Whether `body` is the update of a batch of items.
fn batch_update(body: &Document) -> bool {
    body.get_str("update") == Ok("items")
}

/// How many runs the checkpoint says lost the answer to its next batch's
/// update.
async fn unanswered(db: &Database) -> Option<i64> {
    let lock = lock_document(db).await?;
    let entry = lock
        .get_array("checkpoints")
        .ok()?
        .first()?
        .as_document()?
        .clone();
    match entry.get("unanswered") {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    }
}

/// A batch whose update ran but whose reply was lost, in each of two runs.
/// On a server without transactions it is not sent again as if it had not
/// run: each run stops, naming the batch, and the checkpoint keeps how many
/// runs lost its answer, so the second says its documents may be changed
/// three times, and they are once the third run has done it. On a replica
/// set the batch is a transaction that did not commit: tried again, and
/// every item changed once.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_update_whose_reply_was_lost_is_not_sent_again_as_if_it_had_not_run() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let count = 2_000;
    let batch: usize = 100;
    let db = setup_with("backfill_lost_reply", count).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The third batch's update, and the next one sent after it, run; the
    // client only learns that the connection closed.
    let updates = std::sync::atomic::AtomicUsize::new(0);
    let lost = proxy.add(
        Rule::new(
            Match::any().when(move |body| {
                batch_update(body)
                    && (2..4).contains(&updates.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
            }),
            Fault::DropReply,
        )
        .times(2),
    );
    let holder = |proxy_uri: String| {
        finish(
            Worker::new(WORKER, &db, 2_000)
                .through(&proxy_uri)
                .env("BACKFILL_BATCH", batch)
                .spawn(),
            deadline(),
        )
    };
    let first = holder(proxy.uri());
    assert!(lost.hits() >= 1, "the reply to the third batch's update was lost");

    if schema_tests::server::is_replica_set(&db).await {
        // A transaction whose update lost its reply did not commit: it is
        // tried again, and the second loss too.
        assert!(first.status.success(), "{}", text(&first));
        assert_eq!(lost.hits(), 2, "both losses were in this run");
        assert_changed_once_except(&db, count, 0).await;
        return;
    }

    assert!(!first.status.success(), "{}", text(&first));
    assert_eq!(lost.hits(), 1, "the update was not sent again: {}", text(&first));
    assert!(
        text(&first).contains("its documents may have been changed twice"),
        "{}",
        text(&first)
    );
    assert_eq!(
        unanswered(&db).await,
        Some(1),
        "the checkpoint counts the lost answer"
    );

    // The next run does the batch once more, and loses its answer too.
    let second = holder(proxy.uri());
    assert_eq!(
        lost.hits(),
        2,
        "the next run's update of that batch lost its reply"
    );
    assert!(!second.status.success(), "{}", text(&second));
    let said = text(&second);
    assert!(
        said.contains("2 runs have now lost this batch's answer")
            && said.contains("may have been changed up to 3 times"),
        "{said}"
    );
    assert_eq!(unanswered(&db).await, Some(2));
    let lock = schema_core::SchemaManager::new(db.clone())
        .lock_status()
        .await
        .expect("lock status")
        .start
        .expect("the lock stays for its checkpoint");
    assert_eq!(
        lock.backfills
            .iter()
            .map(|backfill| backfill.unanswered)
            .collect::<Vec<_>>(),
        [2],
        "{lock:?}"
    );

    // The third run does it once more: three times in all, as said.
    let waiter = finish(
        Worker::new(WORKER, &db, 2_000)
            .env("BACKFILL_BATCH", batch)
            .spawn(),
        deadline(),
    );
    assert!(waiter.status.success(), "{}", text(&waiter));
    let tally = tally(&db).await;
    assert_eq!(
        tally,
        [(1, count - batch), (3, batch)].into(),
        "one batch changed three times, every other item once"
    );
    assert_eq!(record_ids(&db, "schema_versions").await, ["f_0001_backfill"]);
}

/// A batch update whose reply never comes is given up on within the
/// lease, instead of holding the lock for ever while the renewals go on.
/// On a replica set the batch's transaction did not commit: it is tried
/// again, and every item changed once.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_update_that_never_answers_is_given_up_on_within_the_lease() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let count = 1_000;
    let batch: usize = 100;
    let db = setup_with("backfill_silent_update", count).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let updates = std::sync::atomic::AtomicUsize::new(0);
    let silent = proxy.add(Rule::new(
        Match::any().when(move |body| {
            batch_update(body) && updates.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
        }),
        Fault::BlackholeReply,
    ));
    let holder = finish(
        Worker::new(WORKER, &db, 2_000)
            .through(&proxy.uri())
            .env("BACKFILL_BATCH", batch)
            .spawn(),
        Instant::now() + Duration::from_secs(60),
    );
    assert_eq!(silent.hits(), 1, "the second batch's update got no answer");
    if schema_tests::server::is_replica_set(&db).await {
        assert!(holder.status.success(), "{}", text(&holder));
        assert_changed_once_except(&db, count, 0).await;
        return;
    }
    assert!(!holder.status.success(), "{}", text(&holder));
    stopped_then_redone(&db, &holder, count, batch).await;
}
