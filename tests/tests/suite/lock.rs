//! The schema lock seen from one process: the commands of a start with one
//! migration pending (a start with nothing pending is in `command_counts.rs`),
//! waiting for a live holder, taking over from a dead one, and losing the lease.
//! The set is the group `lock`.

use std::time::Duration;

use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{documents, fresh_database, monitored_database, note_ran, ran, record_ids, take_commands};

#[migration(id = "l_0001", group = "lock")]
async fn first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "l_0001").await
}

/// Hands the lock to an intruder while running, when the test asks for it
#[migration(id = "l_0002_steals", group = "lock", after = "l_0001")]
async fn steals(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "l_0002_steals").await?;
    if db
        .collection::<Document>("steal")
        .find_one(doc! {})
        .await?
        .is_some()
    {
        db.collection::<Document>("schema_lock")
            .update_one(doc! {}, doc! { "$set": { "owner": "intruder:1:0" } })
            .await?;
    }
    Ok(())
}

/// A manager of this file's migrations, the group `lock`, on `db`.
fn manager(db: &Database) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group("lock").expect("a valid group"))
}

fn hour_from_now(sign: i64) -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() + sign * 3_600_000)
}

async fn plant_lock(db: &Database, collection: &str, renewed_at: DateTime) {
    db.collection::<Document>(collection)
        .insert_one(schema_tests::held_lock(doc! {
            "_id": "schema_versions",
            "owner": "other-host:4242:abc",
            "renewed_at": renewed_at,
            "lease_ms": 30_000,
            "running": "l_0001",
        }))
        .await
        .unwrap();
}

fn commands(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, target)| ((*name).to_owned(), (*target).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_start_with_one_migration_pending_sends_exactly_these_commands() {
    let (db, sent) = monitored_database("one_pending").await;
    db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "l_0001" })
        .await
        .unwrap();
    take_commands(&sent);

    let report = manager(&db).apply_all().await.expect("apply");
    assert_eq!(report.applied, ["l_0002_steals"]);
    assert_eq!(
        take_commands(&sent),
        commands(&[
            ("find", "schema_versions"),      // what is pending
            ("hello", ""),                    // the server's clock, for the lease
            ("insert", "schema_lock"),        // take the lock
            ("find", "schema_versions"),      // pending again, under the lock
            ("insert", "ran"),                // the migration itself...
            ("find", "steal"),                // ...which looks for the test's signal
            ("findAndModify", "schema_lock"), // fence its completion under the lease
            ("insert", "schema_versions"),
            // Release: a findAndModify that removes it at its version.
            ("findAndModify", "schema_lock"),
        ])
    );
}

#[tokio::test]
async fn waiting_for_a_live_holder_times_out_naming_it() {
    let db = fresh_database("lock_timeout").await;
    plant_lock(&db, "schema_lock", hour_from_now(1)).await;

    let error = manager(&db)
        .lock_wait_timeout(Duration::from_millis(300))
        .apply_all()
        .await
        .unwrap_err();
    let Error::LockTimeout { holder, running, .. } = &error else {
        panic!("expected a lock timeout, got {error:?}");
    };
    assert_eq!(holder, "other-host:4242:abc");
    assert_eq!(running.as_deref(), Some("l_0001"));
    let message = error.to_string();
    assert!(
        message.contains("held by other-host:4242:abc, which is applying `l_0001`"),
        "{message}"
    );
    assert!(ran(&db).await.is_empty(), "nothing ran without the lock");
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    assert_eq!(
        documents(&db, "schema_lock").await.len(),
        1,
        "another's lock is left alone"
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_interrupted_migration_reported() {
    let db = fresh_database("expired_lease").await;
    plant_lock(&db, "locks", hour_from_now(-1)).await;

    let report = manager(&db)
        .lock_collection("locks")
        .lock_wait_timeout(Duration::from_secs(30))
        .apply_all()
        .await
        .expect("apply");
    let interrupted = report.interrupted.expect("the takeover is reported");
    assert_eq!(interrupted.previous_owner, "other-host:4242:abc");
    assert_eq!(interrupted.migration.as_deref(), Some("l_0001"));
    assert_eq!(report.applied, ["l_0001", "l_0002_steals"]);
    assert_eq!(ran(&db).await, ["l_0001", "l_0002_steals"]);
    assert!(documents(&db, "locks").await.is_empty(), "released after the run");
}

#[tokio::test]
async fn a_lost_lease_stops_the_run_before_recording() {
    let db = fresh_database("lost_lease").await;
    db.collection::<Document>("steal")
        .insert_one(doc! { "_id": 1 })
        .await
        .unwrap();

    let error = manager(&db).apply_all().await.unwrap_err();
    assert!(
        matches!(&error, Error::LockLost { id, source: None } if id == "l_0002_steals"),
        "{error:?}"
    );
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["l_0001"],
        "not recorded without the lock"
    );
    let lock = documents(&db, "schema_lock").await;
    assert_eq!(lock.len(), 1);
    assert_eq!(
        lock[0].get_str("owner"),
        Ok("intruder:1:0"),
        "the new holder's lock is left alone"
    );
}
