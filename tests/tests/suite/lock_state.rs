//! The lock document as one versioned state, seen from one process: an
//! operator command run while the lock is kept for a backfill's
//! checkpoints, a takeover whose reply was lost (reported, and resolved
//! also by a command that does not wait), a renewal that cannot start,
//! durations too long to add to a clock, and the shortest lease a sharded
//! cluster allows. Each test first shows that its fault happened (the lock
//! was kept, the proxy swallowed that reply), then asserts what the
//! database holds.

use std::time::{Duration, Instant};

use schema_core::data::Backfill;
use schema_core::mongodb::bson::{Bson, DateTime, Document, doc};
use schema_core::mongodb::options::ClientOptions;
use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::{documents, fresh_database, note_ran, ran, record_ids};

/// Short, so that abandoned locks end quickly.
const LEASE: Duration = Duration::from_millis(1_000);

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone())
        .migrations(Migrations::group(group).expect("a valid group"))
        .lock_lease(LEASE)
}

/// The first write to the lock that could be a takeover.
fn takeover() -> Match {
    Match::command("findAndModify").on("schema_lock")
}

/// Asserts that the first takeover through `proxy` landed (the server's
/// reply, recorded at the proxy, holds the lock it matched) and that the
/// client never got that reply.
fn assert_landed_unheard(proxy: &FaultProxy) {
    let exchanges = proxy.exchanges(&takeover());
    let (sent, reply) = exchanges.first().expect("a takeover was sent");
    let reply = reply.as_ref().expect("the server answered the takeover");
    assert!(!reply.delivered, "the client never heard back");
    assert!(
        reply.body.get_document("value").is_ok(),
        "the takeover landed: {} for {}",
        reply.body,
        sent.body
    );
}

// Forgetting a migration while the lock is kept for a backfill's checkpoint.

#[migration(id = "k_0001", group = "kept")]
async fn kept_first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "k_0001").await
}

/// Adds 1 to every item, ten at a time; its third batch fails while the
/// database holds a `fail` document.
#[migration(id = "k_0002", after = "k_0001", group = "kept")]
async fn kept_backfill(db: &Database) -> Result<(), Error> {
    note_ran(db, "k_0002").await.map_err(|error| Error::Database {
        action: "note the run".into(),
        source: error.into(),
    })?;
    let fails = db.collection::<Document>("fail");
    let mut batches = 0;
    Backfill::new(db, "items")
        .batch_size(10)
        .for_each_batch(move |items, ids| {
            batches += 1;
            let fails = fails.clone();
            async move {
                if batches == 3 && fails.find_one_and_delete(doc! {}).await?.is_some() {
                    return Err("the third batch fails".into());
                }
                items
                    .update_many(doc! { "_id": { "$in": ids } }, doc! { "$inc": { "n": 1 } })
                    .await?;
                Ok::<(), schema_core::BoxError>(())
            }
        })
        .run()
        .await?;
    Ok(())
}

#[tokio::test]
async fn forgetting_a_migration_while_the_lock_keeps_checkpoints_runs_it_again() {
    let db = fresh_database("forget_while_kept").await;
    // Ids of one digit count: the emulator sorts integer ids as text.
    let items: Vec<Document> = (10_000..10_050).map(|id| doc! { "_id": id, "n": 0 }).collect();
    db.collection::<Document>("items")
        .insert_many(items)
        .await
        .unwrap();
    db.collection::<Document>("fail")
        .insert_one(doc! {})
        .await
        .unwrap();

    let error = manager(&db, "kept")
        .apply_all()
        .await
        .expect_err("the backfill fails");
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "k_0002"),
        "{error:?}"
    );
    // The fault: the lock is kept, released, for the backfill's checkpoint.
    let lock = documents(&db, "schema_lock").await;
    assert_eq!(lock.len(), 1, "{lock:?}");
    assert_eq!(lock[0].get_array("checkpoints").map(Vec::len), Ok(1), "{lock:?}");
    assert_eq!(record_ids(&db, "schema_versions").await, ["k_0001"]);

    let forgotten = manager(&db, "kept").forget("k_0001").await.expect("forget");
    assert!(forgotten.removed);
    assert!(record_ids(&db, "schema_versions").await.is_empty());

    let report = manager(&db, "kept").apply_all().await.expect("the next start");
    assert_eq!(
        report.applied,
        ["k_0001", "k_0002"],
        "the forgotten migration runs again, not recorded from a stale ledger"
    );
    assert_eq!(ran(&db).await, ["k_0001", "k_0002", "k_0001", "k_0002"]);
    assert_eq!(record_ids(&db, "schema_versions").await, ["k_0001", "k_0002"]);
    let changed = documents(&db, "items")
        .await
        .iter()
        .filter(|item| matches!(item.get("n"), Some(Bson::Int32(1) | Bson::Int64(1))))
        .count();
    assert_eq!(changed, 50, "the backfill resumed: every item changed once");
    assert!(documents(&db, "schema_lock").await.is_empty());
}

// A takeover whose reply was lost.

/// Hangs, the first time, while the database holds a `hang` document.
#[migration(id = "t_0001", group = "takeover")]
async fn hangs_once(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "t_0001").await?;
    let hang = db.collection::<Document>("hang");
    if hang.find_one_and_delete(doc! {}).await?.is_some() {
        std::future::pending::<()>().await;
    }
    Ok(())
}

/// Leaves a lock whose holder is gone in the middle of `t_0001`, as a
/// process that died there would: its lease ends [`LEASE`] later. Returns
/// the holder's owner id.
async fn abandoned_lock(db: &Database) -> String {
    db.collection::<Document>("hang")
        .insert_one(doc! {})
        .await
        .unwrap();
    let holder = manager(db, "takeover");
    let applying = tokio::spawn(async move { holder.apply_all().await });
    let until = Instant::now() + Duration::from_secs(30);
    let owner = loop {
        let lock = documents(db, "schema_lock").await;
        let running = lock.first().and_then(|lock| lock.get_str("running").ok());
        if running == Some("t_0001") && ran(db).await == ["t_0001"] {
            break lock[0].get_str("owner").expect("an owner").to_owned();
        }
        assert!(Instant::now() < until, "the holder reached t_0001");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Dropped half way: nothing renews the lease any more.
    applying.abort();
    let _ = applying.await;
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    owner
}

#[tokio::test(flavor = "multi_thread")]
async fn a_takeover_whose_reply_was_lost_still_reports_the_interrupted_holder() {
    let db = fresh_database("lost_takeover_reply").await;
    let previous = abandoned_lock(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let lost = proxy.add(Rule::new(takeover(), Fault::BlackholeReply).times(1));

    let report = manager(&proxy.database(&db).await, "takeover")
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(lost.hits(), 1, "the takeover's reply was lost");
    assert_landed_unheard(&proxy);
    let interrupted = report.interrupted.expect("the takeover is reported");
    assert_eq!(interrupted.previous_owner, previous);
    assert_eq!(interrupted.migration.as_deref(), Some("t_0001"));
    assert_eq!(report.applied, ["t_0001"]);
    assert_eq!(ran(&db).await, ["t_0001", "t_0001"]);
    assert_eq!(record_ids(&db, "schema_versions").await, ["t_0001"]);
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_resolves_a_takeover_whose_reply_was_lost_instead_of_leaving_a_lease_nobody_renews() {
    let db = fresh_database("lost_takeover_unlock").await;
    abandoned_lock(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let lost = proxy.add(Rule::new(takeover(), Fault::BlackholeReply).times(1));

    // `unlock` does not wait for a holder, but its own takeover is no
    // holder to wait for.
    let unlocked = manager(&proxy.database(&db).await, "takeover")
        .unlock(schema_core::Lane::Start)
        .await;
    assert_eq!(lost.hits(), 1, "the takeover's reply was lost");
    assert_landed_unheard(&proxy);
    assert!(matches!(unlocked, Ok(true)), "{unlocked:?}");
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "no lease is left that nobody renews"
    );
    assert!(record_ids(&db, "schema_versions").await.is_empty());
}

// The renewal, and durations.

#[migration(id = "r_0001", group = "renewal")]
async fn renewal_first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "r_0001").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

#[tokio::test]
async fn a_renewal_that_cannot_start_fails_the_apply_before_any_migration_runs() {
    let db = fresh_database("renewal_fails_to_start").await;
    let mut options = ClientOptions::parse(schema_tests::uri()).await.unwrap();
    // A client the driver refuses to build.
    options.max_pool_size = Some(0);

    let error = manager(&db, "renewal")
        .lease_client(options)
        .apply_all()
        .await
        .expect_err("no renewal, no apply");
    assert_eq!(error.kind(), "lease_renewal", "{error:?}");
    assert!(ran(&db).await.is_empty(), "nothing ran without renewals");
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "the lock was let go"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_and_leases_of_duration_max_are_forever_not_an_overflow() {
    let db = fresh_database("duration_max").await;
    let unbounded = || {
        manager(&db, "renewal")
            .lock_lease(Duration::MAX)
            .lock_wait_timeout(Duration::MAX)
    };
    // Two at once: one applies, the other waits for it without a bound.
    let (one, other) = (unbounded(), unbounded());
    let (first, second) = tokio::join!(one.apply_all(), other.apply_all());
    let (first, second) = (first.expect("apply"), second.expect("apply"));
    let mut applied = [first.applied, second.applied].concat();
    applied.sort();
    assert_eq!(applied, ["r_0001"]);
    assert_eq!(ran(&db).await, ["r_0001"]);
    assert_eq!(record_ids(&db, "schema_versions").await, ["r_0001"]);
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_shorter_than_a_sharded_cluster_allows_is_refused_there() {
    let db = fresh_database("sharded_lease").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The lock's own `hello` (the driver's go to `admin`) answered as a
    // mongos would.
    let name = db.name().to_owned();
    let mongos = proxy.add(Rule::new(
        Match::command("hello").when(move |body| body.get_str("$db") == Ok(name.as_str())),
        Fault::Reply(doc! {
            "ok": 1.0, "isWritablePrimary": true, "msg": "isdbgrid",
            "localTime": DateTime::now(), "maxWireVersion": 21,
        }),
    ));

    let error = manager(&proxy.database(&db).await, "renewal")
        .apply_all()
        .await
        .expect_err("too short a lease for a sharded cluster");
    assert!(mongos.hits() >= 1, "the lock asked the mongos for its clock");
    assert!(
        matches!(&error, Error::Configuration { reason } if reason.contains("sharded")),
        "{error:?}"
    );
    assert!(ran(&db).await.is_empty());
    assert!(documents(&db, "schema_lock").await.is_empty());
}
