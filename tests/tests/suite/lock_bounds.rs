//! The lock's bounds, seen from one process through the fault-injecting
//! proxy: the wait timeout is honoured with a bounded number of commands
//! (also when the server answers nonsense or nothing), an acquisition whose
//! reply was lost is recognised, a misconfiguration is refused before any
//! command, and a lost lease is reported as such even when the migration
//! also failed. The set is the group `lock_bounds`.

use std::time::{Duration, Instant};

use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::{
    chain, documents, fresh_database, monitored_database, note_ran, ran, record_ids, take_commands,
};

#[migration(id = "b_0001", group = "lock_bounds")]
async fn first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "b_0001").await
}

/// Blocks its thread past the lease when the test asks for it, then fails
#[migration(id = "b_0002_blocks", group = "lock_bounds", after = "b_0001")]
async fn blocks(db: &Database) -> Result<(), schema_core::BoxError> {
    note_ran(db, "b_0002_blocks").await?;
    if let Some(block) = db.collection::<Document>("block").find_one(doc! {}).await? {
        // The server may narrow a small int64 to an int32.
        let ms = block
            .get("ms")
            .and_then(|ms| ms.as_i64().or(ms.as_i32().map(i64::from)));
        std::thread::sleep(Duration::from_millis(
            ms.and_then(|ms| u64::try_from(ms).ok()).unwrap_or(0),
        ));
        return Err("the blocking migration gave up".into());
    }
    Ok(())
}

/// A manager of this file's migrations, the group `lock_bounds`, on `db`.
fn manager(db: &Database) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group("lock_bounds").expect("a valid group"))
}

fn lock_commands() -> Match {
    Match::any().on("schema_lock")
}

async fn plant_live_lock(db: &Database) {
    let in_an_hour = DateTime::from_millis(DateTime::now().timestamp_millis() + 3_600_000);
    db.collection::<Document>("schema_lock")
        .insert_one(schema_tests::held_lock(doc! {
            "_id": "schema_versions", "owner": "other:1:x", "renewed_at": in_an_hour, "lease_ms": 30_000,
        }))
        .await
        .unwrap();
}

/// How long these tests let a start wait for the lock.
const WAIT: Duration = Duration::from_millis(1_500);

/// Applies through `proxy` with a wait of [`WAIT`], expecting it to give
/// up within twice that; returns the error.
async fn gives_up_in_time(proxy: &FaultProxy, db: &Database, lease: Option<Duration>) -> Error {
    let mut manager = manager(&proxy.database(db).await).lock_wait_timeout(WAIT);
    if let Some(lease) = lease {
        manager = manager.lock_lease(lease);
    }
    let started = Instant::now();
    let error = manager.apply_all().await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited < 2 * WAIT,
        "gave up after {waited:?}, more than twice {WAIT:?}"
    );
    error
}

/// A look at the lock is an insert and a read, and the pauses between
/// looks are a second, give or take half: a handful in all, not thousands.
fn assert_few_lock_commands(proxy: &FaultProxy) {
    let looks = proxy.count(&lock_commands());
    assert!((2..=12).contains(&looks), "{looks} lock commands");
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_live_holder_gives_up_in_time_with_few_commands() {
    let db = fresh_database("wait_bounded").await;
    plant_live_lock(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;

    let error = gives_up_in_time(&proxy, &db, None).await;
    assert!(matches!(error, Error::LockTimeout { .. }), "{error:?}");
    assert_few_lock_commands(&proxy);
    assert!(ran(&db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_key_without_a_lock_to_read_does_not_spin() {
    let db = fresh_database("no_spin").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The insert says the lock exists, but no read finds it: a stale read.
    let duplicate = proxy.add(Rule::new(
        Match::command("insert").on("schema_lock"),
        Fault::duplicate_key("schema_lock"),
    ));

    let error = gives_up_in_time(&proxy, &db, None).await;
    assert!(duplicate.hits() >= 1);
    assert!(matches!(error, Error::ServerTimeout { .. }), "{error:?}");
    assert_few_lock_commands(&proxy);
    assert!(ran(&db).await.is_empty());
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_acknowledges_the_lock_is_given_up_on_in_time() {
    let db = fresh_database("unacknowledged").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // As when no majority can acknowledge: the write never answers.
    let silent = proxy.add(Rule::new(Match::command("insert").on("schema_lock"), Fault::Hold));

    let error = gives_up_in_time(&proxy, &db, Some(Duration::from_millis(1_500))).await;
    assert!(silent.hits() >= 1, "the lock insert was held");
    assert!(matches!(error, Error::ServerTimeout { .. }), "{error:?}");
    assert!(
        chain(&error).contains("take the schema lock"),
        "{}",
        chain(&error)
    );
    silent.remove();
    assert!(ran(&db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_insert_whose_reply_was_lost_is_recognised_as_taken() {
    let db = fresh_database("ghost_lock").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let lost =
        proxy.add(Rule::new(Match::command("insert").on("schema_lock"), Fault::BlackholeReply).times(1));

    let report = manager(&proxy.database(&db).await)
        .lock_lease(Duration::from_millis(1_500))
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(lost.hits(), 1, "the first insert's reply was lost");
    // It landed: the server's reply, which the client never got, counts
    // the inserted lock.
    let inserts = proxy.exchanges(&Match::command("insert").on("schema_lock"));
    let (_, reply) = inserts.first().expect("the lock insert was sent");
    let reply = reply.as_ref().expect("the server answered the insert");
    assert!(!reply.delivered, "the client never heard back");
    assert_eq!(
        reply.body.get("n").and_then(|n| n.as_i32()),
        Some(1),
        "{}",
        reply.body
    );
    assert_eq!(
        report.interrupted, None,
        "the lock was recognised as this process's own, not taken over from a ghost"
    );
    assert_eq!(report.applied, ["b_0001", "b_0002_blocks"]);
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["b_0001", "b_0002_blocks"]
    );
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test]
async fn misconfigurations_are_refused_before_any_command() {
    let (db, sent) = monitored_database("misconfigured").await;
    let same = manager(&db)
        .lock_collection("schema_versions")
        .apply_all()
        .await
        .unwrap_err();
    assert!(matches!(same, Error::Configuration { .. }), "{same:?}");
    assert!(same.to_string().contains("`schema_versions`"), "{same}");
    let short = manager(&db)
        .lock_lease(Duration::from_millis(10))
        .forget("b_0001")
        .await
        .unwrap_err();
    assert!(matches!(short, Error::Configuration { .. }), "{short:?}");
    assert!(take_commands(&sent).is_empty(), "nothing was sent");
}

/// The test's runtime has one thread, and the manager renews from a task
/// on it: the blocking migration stops the renewals, the lease ends by the
/// holder's own clock, and the failure is reported as the lost lock it
/// caused, with the migration's error as its source.
#[tokio::test]
async fn a_lost_lease_and_a_failed_migration_are_reported_together() {
    let db = fresh_database("lost_and_failed").await;
    db.collection::<Document>("block")
        .insert_one(doc! { "ms": 1_200_i64 })
        .await
        .unwrap();

    let error = manager(&db)
        .lock_lease(Duration::from_millis(600))
        .apply_all()
        .await
        .unwrap_err();
    let Error::LockLost { id, source } = &error else {
        panic!("expected a lost lock, got {error:?}");
    };
    assert_eq!(id, "b_0002_blocks");
    let source = source.as_ref().expect("the migration's own error");
    assert!(
        source.to_string().contains("the blocking migration gave up"),
        "{source}"
    );
    assert_eq!(ran(&db).await, ["b_0001", "b_0002_blocks"]);
    assert_eq!(record_ids(&db, "schema_versions").await, ["b_0001"]);
}

#[tokio::test]
async fn a_malformed_lock_document_is_an_error_not_a_wait() {
    let db = fresh_database("malformed_lock").await;
    db.collection::<Document>("schema_lock")
        .insert_one(doc! { "_id": "schema_versions", "owner": 5, "renewed_at": "yesterday" })
        .await
        .unwrap();

    let started = Instant::now();
    let error = manager(&db)
        .lock_wait_timeout(Duration::from_secs(600))
        .apply_all()
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "did not wait for the lock"
    );
    let Error::MalformedLock { collection, reason } = &error else {
        panic!("expected a malformed lock, got {error:?}");
    };
    assert_eq!(collection, "schema_lock");
    assert!(reason.contains("`owner`"), "{reason}");
    assert!(error.to_string().contains("`unlock --force`"), "{error}");
    assert!(ran(&db).await.is_empty());
}
