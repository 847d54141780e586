//! The example application's eleven migrations, applied to a fresh database:
//! the indexes that exist afterwards, the commands that built them, and the
//! events the status backfill changed, and what preflight says of an event
//! store written before them.
//!
//! The test server keeps index keys, `unique` and TTL seconds, but renames
//! indexes, forgets descending directions and does not list text indexes,
//! so text indexes and directions are checked in the commands sent.

use std::collections::BTreeMap;

use schema_core::SchemaManager;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::preflight::{Code, Severity};
use schema_tests::live::Live;
use schema_tests::{index_documents, monitored_database, record_ids, take_commands};

// Linking the example registers its migrations in this test binary.
use example_app as _;

/// An existing index as the test server keeps it: key fields in order,
/// whether it is unique, and its TTL seconds.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Kept {
    fields: Vec<String>,
    unique: bool,
    ttl_seconds: Option<i64>,
}

fn kept(fields: &[&str], unique: bool, ttl_seconds: Option<i64>) -> Kept {
    Kept {
        fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        unique,
        ttl_seconds,
    }
}

async fn indexes(db: &Database, collection: &str) -> Vec<Kept> {
    let mut found: Vec<Kept> = index_documents(db, collection)
        .await
        .iter()
        .filter(|index| index.get_str("name") != Ok("_id_"))
        .map(|index| Kept {
            fields: index.get_document("key").unwrap().keys().cloned().collect(),
            unique: index.get_bool("unique").unwrap_or(false),
            ttl_seconds: match index.get("expireAfterSeconds") {
                Some(Bson::Int32(seconds)) => Some(i64::from(*seconds)),
                Some(Bson::Int64(seconds)) => Some(*seconds),
                Some(Bson::Double(seconds)) => Some(*seconds as i64),
                _ => None,
            },
        })
        .collect();
    found.sort();
    found
}

fn sorted(mut expected: Vec<Kept>) -> Vec<Kept> {
    expected.sort();
    expected
}

#[tokio::test]
async fn the_eleven_migrations_build_the_backends_indexes() {
    let (db, sent) = monitored_database("example_schema").await;
    let manager = SchemaManager::new(db.clone());
    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.applied.len(), 10, "{report:?}");
    assert_eq!(report.background, ["0011_events_by_correlation"]);
    manager
        .wait_applied(std::time::Duration::from_secs(30))
        .await
        .expect("the background migration is applied");
    let commands = take_commands(&sent);
    assert_eq!(record_ids(&db, "schema_versions").await.len(), 11);

    assert_eq!(
        indexes(&db, "events").await,
        sorted(vec![
            kept(&["event_id"], true, None),
            kept(&["event_type", "timestamp"], false, None),
            kept(&["aggregate_id", "timestamp"], false, None),
            kept(&["metadata.user_id", "timestamp"], false, None),
            kept(&["metadata.service_name", "timestamp"], false, None),
            kept(&["metadata.correlation_id", "timestamp"], false, None),
            kept(&["status", "timestamp"], false, None),
            kept(&["ttl_expires_at"], false, Some(0)),
        ])
    );
    assert_eq!(
        indexes(&db, "user_settings_snapshots").await,
        sorted(vec![
            kept(&["snapshot_id"], true, None),
            kept(&["user_id", "created_at"], false, None)
        ])
    );
    assert_eq!(
        indexes(&db, "replay_sessions").await,
        sorted(vec![
            kept(&["session_id"], true, None),
            kept(&["status", "created_at"], false, None),
            kept(&["user_id", "created_at"], false, None),
        ])
    );
    assert_eq!(
        indexes(&db, "notifications").await,
        sorted(vec![
            kept(&["notification_id"], true, None),
            kept(&["user_id", "created_at"], false, None),
            kept(&["user_id", "status"], false, None),
        ])
    );
    assert_eq!(
        indexes(&db, "notification_rules").await,
        sorted(vec![
            kept(&["rule_id"], true, None),
            kept(&["event_types", "enabled"], false, None)
        ])
    );
    assert_eq!(
        indexes(&db, "idempotency_keys").await,
        sorted(vec![
            kept(&["key"], true, None),
            kept(&["created_at"], false, Some(3600))
        ])
    );
    assert_eq!(
        indexes(&db, "sagas").await,
        sorted(vec![
            kept(&["saga_id"], true, None),
            kept(&["execution_id"], false, None),
            kept(&["state", "created_at"], false, None),
        ])
    );
    assert_eq!(
        indexes(&db, "execution_results").await,
        sorted(vec![
            kept(&["execution_id"], true, None),
            kept(&["user_id", "created_at"], false, None)
        ])
    );
    assert_eq!(
        indexes(&db, "dlq_messages").await,
        sorted(vec![
            kept(&["event_id"], true, None),
            kept(&["status", "failed_at"], false, None),
            kept(&["failed_at"], false, Some(7 * 24 * 3600)),
        ])
    );

    // One createIndexes per collection and migration, whatever the number
    // of indexes: two migrations index the events.
    let mut per_collection: BTreeMap<String, usize> = BTreeMap::new();
    for (name, target) in &commands {
        if name == "createIndexes" {
            *per_collection.entry(target.clone()).or_default() += 1;
        }
    }
    let collections = [
        "dlq_messages",
        "events",
        "execution_results",
        "idempotency_keys",
        "notification_rules",
        "notifications",
        "replay_sessions",
        "sagas",
        "user_settings_snapshots",
    ];
    assert_eq!(
        per_collection,
        collections
            .iter()
            .map(|name| ((*name).to_owned(), if *name == "events" { 2 } else { 1 }))
            .collect()
    );
    assert!(
        !commands.iter().any(|(name, _)| name == "listIndexes"),
        "no listIndexes on the happy path"
    );
}

#[tokio::test]
async fn a_second_start_applies_nothing_and_leaves_the_indexes_as_they_were() {
    let (db, _sent) = monitored_database("example_twice").await;
    SchemaManager::new(db.clone())
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("first start");
    let collections = [
        "events",
        "idempotency_keys",
        "dlq_messages",
        "notifications",
        "sagas",
    ];
    let mut before = Vec::new();
    for collection in collections {
        before.push(indexes(&db, collection).await);
    }

    let report = SchemaManager::new(db.clone())
        .apply_all()
        .await
        .expect("second start");
    assert!(report.applied.is_empty(), "{report:?}");
    assert!(report.background.is_empty(), "{report:?}");
    assert_eq!(report.already_applied.len(), 11);
    for (collection, before) in collections.iter().zip(before) {
        assert_eq!(indexes(&db, collection).await, before, "{collection}");
    }
}

#[tokio::test]
async fn the_events_text_index_and_validator_are_sent_as_declared() {
    let (db, sent) = monitored_database("example_commands").await;
    SchemaManager::new(db.clone()).apply_all().await.expect("apply");
    let sent_documents = schema_tests::take_command_documents(&sent);

    let create = sent_documents
        .iter()
        .find(|command| command.get_str("createIndexes") == Ok("events"))
        .expect("createIndexes on events");
    let specs = create.get_array("indexes").unwrap();
    assert_eq!(specs.len(), 8, "all events indexes in one command");
    let text = specs
        .iter()
        .filter_map(Bson::as_document)
        .find(|spec| spec.get_str("name") == Ok("events_text"))
        .expect("the text index is declared");
    assert_eq!(
        text.get_document("key").unwrap(),
        &doc! { "event_type": "text", "metadata.service_name": "text", "payload.message": "text" }
    );
    assert_eq!(text.get_str("default_language"), Ok("english"));
    let by_type = specs
        .iter()
        .filter_map(Bson::as_document)
        .find(|spec| spec.get_str("name") == Ok("event_type_1_timestamp_-1"))
        .expect("unnamed indexes get MongoDB's default name");
    assert_eq!(
        by_type.get_document("key").unwrap(),
        &doc! { "event_type": 1, "timestamp": -1 }
    );

    let validator: &Document = sent_documents
        .iter()
        .find(|command| command.get_str("collMod") == Ok("events"))
        .expect("collMod on the events collection, which the indexes created");
    assert_eq!(validator.get_str("validationLevel"), Ok("moderate"));
    assert_eq!(validator.get_str("validationAction"), Ok("warn"));
    let schema = validator
        .get_document("validator")
        .unwrap()
        .get_document("$jsonSchema")
        .unwrap();
    assert_eq!(
        schema.get_array("required").unwrap(),
        &vec![
            Bson::from("event_id"),
            Bson::from("event_type"),
            Bson::from("timestamp")
        ]
    );
}

#[tokio::test]
async fn the_status_backfill_gives_every_event_written_without_one_a_pending_status() {
    let (db, _) = monitored_database("example_status_backfill").await;
    let events = db.collection::<Document>("events");
    let mut written: Vec<Document> = (0..2_500)
        .map(|i| doc! { "event_id": format!("e{i:05}"), "event_type": "order.created" })
        .collect();
    written.push(doc! { "event_id": "done", "event_type": "order.created", "status": "processed" });
    events.insert_many(written).await.expect("write events");

    SchemaManager::new(db.clone()).apply_all().await.expect("apply");

    let count = |filter: Document| {
        let events = events.clone();
        async move { events.count_documents(filter).await.expect("count") }
    };
    assert_eq!(count(doc! { "status": "pending" }).await, 2_500);
    assert_eq!(count(doc! { "status": "processed" }).await, 1, "a status is kept");
    assert_eq!(count(doc! { "status": { "$exists": false } }).await, 0);
}

/// The example ships the snapshot of the schema its migrations declare,
/// `examples/schema.json`: a change to its migrations that changes the
/// schema fails here until the file shows it (`SCHEMA_SNAPSHOT=overwrite`
/// writes it).
#[tokio::test]
async fn the_examples_checked_in_snapshot_is_what_its_migrations_declare() {
    let db = schema_tests::fresh_database("example_snapshot").await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/schema.json");
    let checked = schema_core::testing::check_snapshot(&SchemaManager::new(db), path).await;
    if let Err(error) = checked {
        panic!("{error}");
    }
}

/// An event store written before the migrations: two events share an id,
/// one expired yesterday. Preflight says the unique index on `event_id`
/// fails and the TTL index deletes that event at once, and leaves the
/// database as it was.
#[tokio::test]
async fn preflight_of_the_example_over_old_events_names_the_duplicates_and_what_expires_at_once() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = schema_tests::fresh_database("example_preflight").await;
    let events = db.collection::<Document>("events");
    let now = schema_core::mongodb::bson::DateTime::now();
    let day = 24 * 3600 * 1000;
    let event = |id: &str, expires: i64| {
        doc! {
            "event_id": id,
            "event_type": "order.created",
            "timestamp": now,
            "ttl_expires_at": schema_core::mongodb::bson::DateTime::from_millis(now.timestamp_millis() + expires),
        }
    };
    events
        .insert_many([
            event("e1", day),
            event("e1", day),
            event("e2", -day),
            event("e3", day),
        ])
        .await
        .expect("write events");
    // On every member before the probes may read one.
    schema_tests::live::settle(&db).await;
    let before = Live::read(&db).await;

    let report = SchemaManager::new(db.clone())
        .preflight()
        .await
        .expect("preflight");

    let found = |code: Code| report.findings.iter().find(|finding| finding.code == code);
    let duplicates = found(Code::UniqueDuplicates).expect("the duplicates are found");
    assert_eq!(
        (
            duplicates.migration.as_str(),
            duplicates.collection.as_str(),
            duplicates.count
        ),
        ("0001_events", "events", 2)
    );
    assert_eq!(duplicates.severity, Severity::Fails);
    let expiring = found(Code::TtlDeletes).expect("what expires at once is found");
    assert_eq!((expiring.migration.as_str(), expiring.count), ("0001_events", 1));
    assert!(report.fails());
    let shown = serde_json::to_string(&report).unwrap();
    assert!(
        !shown.contains("e1") && !shown.contains("order.created"),
        "no value: {shown}"
    );
    // Read only: the four events as written, only the `_id` index, no
    // record, no lock, and no scratch database left.
    assert_eq!(before.names(), ["events", "settled"]);
    assert_eq!(before.documents("events").len(), 4);
    let indexes = before.collection("events").map(|events| events.indexes.len());
    assert_eq!(indexes, Some(1), "the `_id` index only");
    before.assert_unchanged(&db).await;
}
