//! A start on a database with a long history (300 records): one read, and
//! everything the records show is found whatever their number: a record
//! deleted by hand (pending again), a drifted checksum, an unknown record,
//! and a malformed record of a declared migration in any of its fields
//! (also those no check reads, which a read cut down to what the check
//! needs would hide).

use schema_core::__private::{Location, Migration, MigrationFuture};
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::mongodb::{Collection, Database};
use schema_core::{Error, Migrations, Policy, SchemaManager};
use schema_tests::{documents, fresh_database, monitored_database, record_ids, take_commands};

const HISTORY: usize = 300;

/// Notes one run in `ran_any`: the set's migrations share this body.
fn note_run(db: &Database) -> MigrationFuture<'_> {
    Box::pin(async move {
        db.collection::<Document>("ran_any").insert_one(doc! {}).await?;
        Ok(())
    })
}

fn id(index: usize) -> String {
    format!("{:04}_history_{index}", index + 1)
}

/// `HISTORY` migrations in a line, built once for the whole module.
fn history() -> Migrations {
    static SET: std::sync::OnceLock<Vec<&'static Migration>> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| {
        (0..HISTORY)
            .map(|index| {
                let after: &'static [&'static str] = if index == 0 {
                    &[]
                } else {
                    Box::leak(vec![&*Box::leak(id(index - 1).into_boxed_str())].into_boxed_slice())
                };
                let migration = Migration::__new(
                    Box::leak(id(index).into_boxed_str()),
                    "one step of a long history",
                    after,
                    Box::leak(format!("{index:016x}").into_boxed_str()),
                    note_run,
                    Location::__new(file!(), line!(), module_path!()),
                );
                &*Box::leak(Box::new(migration))
            })
            .collect()
    });
    Migrations::new(set.iter().copied()).expect("a valid set")
}

/// Every migration of the set recorded as a start records it, with a
/// duration of `index` ms, written directly.
async fn recorded(db: &Database) -> Collection<Document> {
    let versions = db.collection::<Document>("schema_versions");
    let at = DateTime::now();
    let set = history();
    let records = set.iter().enumerate().map(|(index, migration)| {
        doc! {
            "_id": migration.id(),
            "description": migration.description(),
            "checksum": migration.checksum(),
            "applied_at": at,
            "applied_by": "api-1:42",
            "duration_ms": index as i64,
        }
    });
    versions.insert_many(records).await.expect("the records");
    versions
}

fn manager(db: Database) -> SchemaManager {
    SchemaManager::new(db).migrations(history())
}

async fn runs(db: &Database) -> usize {
    documents(db, "ran_any").await.len()
}

#[tokio::test]
async fn an_up_to_date_start_sends_one_read_and_reports_every_recorded_duration() {
    let (db, sent) = monitored_database("long_history_noop").await;
    recorded(&db).await;
    take_commands(&sent);

    let report = manager(db.clone()).apply_all().await.expect("no-op start");

    assert_eq!(
        take_commands(&sent),
        [("find".to_owned(), "schema_versions".to_owned())]
    );
    assert!(report.applied.is_empty());
    assert_eq!(report.already_applied.len(), HISTORY);
    assert_eq!(report.durations.len(), HISTORY);
    assert_eq!(report.durations[&id(123)].as_millis(), 123);
    assert!(report.drifted.is_empty() && report.unknown.is_empty());
    assert_eq!(runs(&db).await, 0);
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "no lock was taken"
    );
}

#[tokio::test]
async fn a_record_deleted_by_hand_is_pending_again_and_runs() {
    let db = fresh_database("long_history_deleted").await;
    let versions = recorded(&db).await;
    let gone = id(150);
    let deleted = versions.delete_one(doc! { "_id": &gone }).await.expect("delete");
    assert_eq!(deleted.deleted_count, 1);

    let report = manager(db.clone()).apply_all().await.expect("apply");

    assert_eq!(report.applied, [gone.as_str()]);
    assert_eq!(runs(&db).await, 1, "exactly the deleted one ran");
    let again = versions
        .find_one(doc! { "_id": &gone })
        .await
        .expect("read")
        .expect("recorded again");
    assert_eq!(again.get_str("checksum"), Ok(format!("{:016x}", 150).as_str()));
    assert_eq!(record_ids(&db, "schema_versions").await.len(), HISTORY);
}

#[tokio::test]
async fn a_drifted_checksum_is_reported_and_refused_under_fail() {
    let db = fresh_database("long_history_drift").await;
    let versions = recorded(&db).await;
    let edited = id(200);
    versions
        .update_one(
            doc! { "_id": &edited },
            doc! { "$set": { "checksum": "ffffffffffffffff" } },
        )
        .await
        .expect("update");

    let report = manager(db.clone()).apply_all().await.expect("apply under warn");
    assert_eq!(report.drifted, [edited.as_str()]);
    assert!(report.applied.is_empty());

    let refused = manager(db.clone()).on_drift(Policy::Fail).apply_all().await;
    assert!(
        matches!(&refused, Err(Error::Drifted { ids }) if *ids == [edited.clone()]),
        "{refused:?}"
    );
    assert_eq!(runs(&db).await, 0);
    let kept = versions
        .find_one(doc! { "_id": &edited })
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(kept.get_str("checksum"), Ok("ffffffffffffffff"));
}

#[tokio::test]
async fn an_unknown_record_is_reported_and_refused_under_fail() {
    let db = fresh_database("long_history_unknown").await;
    let versions = recorded(&db).await;
    versions
        .insert_one(doc! { "_id": "0000_retired", "checksum": "0", "description": "gone from the code" })
        .await
        .expect("insert");

    let report = manager(db.clone()).apply_all().await.expect("apply under warn");
    assert_eq!(report.unknown, ["0000_retired"]);
    assert_eq!(report.already_applied.len(), HISTORY);

    let refused = manager(db.clone()).on_unknown(Policy::Fail).apply_all().await;
    assert!(
        matches!(&refused, Err(Error::UnknownRecords { ids, .. }) if *ids == ["0000_retired"]),
        "{refused:?}"
    );
    assert_eq!(runs(&db).await, 0);
}

#[tokio::test]
async fn a_malformed_record_of_a_declared_migration_is_refused_whichever_field_is_wrong() {
    // `description` and `applied_by` are what no check reads and most of
    // a record's bytes.
    let cases = [
        (
            250,
            doc! { "$set": { "description": 7 } },
            "`description` should be a string but is an int32",
        ),
        (
            251,
            doc! { "$set": { "applied_by": { "host": "api-1" } } },
            "`applied_by` should be a string but is a document",
        ),
        (
            252,
            doc! { "$set": { "applied_at": "yesterday" } },
            "`applied_at` should be a date but is a string",
        ),
    ];
    for (index, update, reason_expected) in cases {
        let db = fresh_database("long_history_malformed").await;
        let versions = recorded(&db).await;
        let broken = id(index);
        versions
            .update_one(doc! { "_id": &broken }, update)
            .await
            .expect("update");

        let refused = manager(db.clone()).apply_all().await;

        assert!(
            matches!(&refused, Err(Error::MalformedRecord { id, reason, .. })
                if *id == broken && reason == reason_expected),
            "{refused:?}"
        );
        assert_eq!(runs(&db).await, 0);
        assert!(
            documents(&db, "schema_lock").await.is_empty(),
            "no lock was taken"
        );
        assert_eq!(record_ids(&db, "schema_versions").await.len(), HISTORY);
    }
}
