//! What only a real MongoDB server does: refusing an index that contradicts
//! an existing one, storing a collection's validator, building text
//! indexes, sorting `_id`s of mixed types in one order, sorting by a
//! collection's default collation, listing every index shape as declared
//! (so that `verify` finds no drift after `apply`), reporting an index
//! build in progress with its numbers (`$currentOp`), taking a commit
//! quorum where one applies, telling whether a build waits for it from the
//! member's record of its builds, and, for backfills,
//! `NaN` and JavaScript-code `_id`s, a `$where` filter, and the plans of
//! the walk's commands on a collection with a default collation.
//!
//! The emulator `scripts/with-mongodb` falls back to accepts all three
//! commands without doing what they ask, so on it each test prints why it
//! skipped and passes (`schema_tests::server` tells the two apart from the
//! server's own answers). The GitHub Actions workflow `mongodb.yml` runs
//! them against MongoDB 6.0, 7.0 and 8.0.

use std::time::Duration;

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, text, ttl};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
use schema_core::{CommitQuorumWait, Error, Validator, set_validator};
use schema_tests::server::skip_unless_real;
use schema_tests::{fresh_database, index_documents, monitored_database, take_command_documents};

/// The index of `collection` named `name`.
async fn index(db: &Database, collection: &str, name: &str) -> Option<Document> {
    index_documents(db, collection)
        .await
        .into_iter()
        .find(|index| index.get_str("name") == Ok(name))
}

/// A number the server stored, whichever of its numeric types it chose.
fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(number) => Some(f64::from(*number)),
        Bson::Int64(number) => Some(*number as f64),
        Bson::Double(number) => Some(*number),
        _ => None,
    }
}

/// The `options` of `collection`, as `listCollections` shows them.
async fn collection_options(db: &Database, collection: &str) -> Document {
    let reply = db
        .run_command(doc! { "listCollections": 1, "filter": { "name": collection } })
        .await
        .expect("listCollections");
    let batch = reply
        .get_document("cursor")
        .and_then(|cursor| cursor.get_array("firstBatch"))
        .expect("a listCollections cursor");
    let [Bson::Document(only)] = batch.as_slice() else {
        panic!("`{collection}` should be listed once: {batch:?}");
    };
    only.get_document("options").expect("collection options").clone()
}

#[tokio::test]
async fn an_index_contradicting_an_existing_one_is_refused_and_nothing_is_created() {
    let db = fresh_database("real_index_conflict").await;
    if skip_unless_real(
        &db,
        "a TTL index declared with another expireAfterSeconds than the existing one must be refused \
         (IndexOptionsConflict); the emulator replaces the existing index instead",
    )
    .await
    {
        return;
    }
    ensure_indexes(&db, "events", [ttl("expires_at", Duration::ZERO)])
        .await
        .expect("the first TTL index is created");

    let error = ensure_indexes(
        &db,
        "events",
        [
            ascending("event_id").unique(),
            ttl("expires_at", Duration::from_secs(3600)),
        ],
    )
    .await
    .expect_err("the server refuses a second expireAfterSeconds under the same name");

    let Error::IndexConflict {
        collection,
        index: declared,
        existing,
        difference,
        ..
    } = &error
    else {
        panic!("expected IndexConflict, got {error:?}");
    };
    assert_eq!(collection, "events");
    assert_eq!(declared, "expires_at_1");
    assert_eq!(existing, "expires_at_1");
    assert_eq!(difference, "expireAfterSeconds: declared 3600, existing 0");
    let message = error.to_string();
    assert!(message.contains("`expires_at_1`"), "{message}");
    assert!(message.contains("declared 3600, existing 0"), "{message}");

    // The command is refused whole: the unique index sent with it was not
    // built, and the existing TTL index kept its options.
    assert_eq!(index(&db, "events", "event_id_1").await, None);
    let kept = index(&db, "events", "expires_at_1")
        .await
        .expect("the existing index is still there");
    assert_eq!(
        kept.get("expireAfterSeconds").and_then(number),
        Some(0.0),
        "{kept}"
    );
}

#[tokio::test]
async fn a_validator_is_stored_with_its_level_and_action() {
    let db = fresh_database("real_validator").await;
    if skip_unless_real(
        &db,
        "listCollections must show the stored $jsonSchema validator; the emulator accepts \
         validators without storing them",
    )
    .await
    {
        return;
    }
    let schema = doc! { "bsonType": "object", "required": ["event_id"] };
    let relaxed = Validator::new(schema.clone())
        .level(ValidationLevel::Moderate)
        .action(ValidationAction::Warn);
    set_validator(&db, "events", relaxed)
        .await
        .expect("the collection is created with its validator");
    let options = collection_options(&db, "events").await;
    assert_eq!(
        options.get_document("validator"),
        Ok(&doc! { "$jsonSchema": schema }),
        "{options}"
    );
    assert_eq!(options.get_str("validationLevel"), Ok("moderate"), "{options}");
    assert_eq!(options.get_str("validationAction"), Ok("warn"), "{options}");

    // On an existing collection the validator is replaced with collMod.
    let stricter = doc! { "bsonType": "object", "required": ["event_id", "timestamp"] };
    // Without a level or action, the server's defaults are sent.
    set_validator(&db, "events", Validator::new(stricter.clone()))
        .await
        .expect("the validator is replaced");
    let options = collection_options(&db, "events").await;
    assert_eq!(
        options.get_document("validator"),
        Ok(&doc! { "$jsonSchema": stricter }),
        "{options}"
    );
    assert_eq!(options.get_str("validationLevel"), Ok("strict"), "{options}");
    assert_eq!(options.get_str("validationAction"), Ok("error"), "{options}");
}

#[tokio::test]
async fn a_text_index_is_listed_with_its_weights() {
    let db = fresh_database("real_text_index").await;
    if skip_unless_real(
        &db,
        "listIndexes must list the text index; the emulator accepts text indexes without building \
         or listing them",
    )
    .await
    {
        return;
    }
    let declared = || [text(&["title", "body"]).weights(doc! { "title": 10 })];
    ensure_indexes(&db, "articles", declared())
        .await
        .expect("the text index is created");
    // The same declaration again is a no-op, not a conflict.
    ensure_indexes(&db, "articles", declared())
        .await
        .expect("declaring it again changes nothing");

    let all = index_documents(&db, "articles").await;
    let listed = all
        .iter()
        .find(|index| index.get_str("name") == Ok("title_text_body_text"))
        .unwrap_or_else(|| panic!("no text index among {all:?}"));
    // The server stores a text index's fields in `weights`, under keys of
    // its own.
    assert_eq!(
        listed.get_document("key"),
        Ok(&doc! { "_fts": "text", "_ftsx": 1 }),
        "{listed}"
    );
    let weights = listed.get_document("weights").expect("weights");
    assert_eq!(weights.get("title").and_then(number), Some(10.0), "{listed}");
    assert_eq!(weights.get("body").and_then(number), Some(1.0), "{listed}");
}

#[tokio::test]
async fn a_backfill_walks_ids_of_mixed_types_once_each_across_their_type_brackets() {
    let db = fresh_database("real_mixed_ids").await;
    if skip_unless_real(
        &db,
        "`_id`s of mixed types must sort in MongoDB's order of types and answer `$type` queries, \
         which the walk from one type to the next relies on",
    )
    .await
    {
        return;
    }
    use schema_core::mongodb::bson::oid::ObjectId;
    let mut ids: Vec<Bson> = Vec::new();
    ids.extend((0..7).map(Bson::Int32));
    ids.extend((0..5).map(|i| Bson::Int64(100 + i)));
    ids.extend((0..6).map(|i| Bson::String(format!("key-{i}"))));
    ids.extend((0..4).map(|_| Bson::ObjectId(ObjectId::new())));
    ids.extend((0..3).map(|i| Bson::DateTime(schema_core::mongodb::bson::DateTime::from_millis(i))));
    let items: Vec<Document> = ids.iter().map(|id| doc! { "_id": id.clone(), "n": 0 }).collect();
    db.collection::<Document>("items")
        .insert_many(items)
        .await
        .expect("insert");

    // Batches of 4 end inside brackets and at their edges.
    let report = schema_core::data::Backfill::new(&db, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(4)
        .run()
        .await
        .expect("the backfill runs");
    assert_eq!(report.visited, ids.len() as u64);
    let once = db
        .collection::<Document>("items")
        .count_documents(doc! { "n": 1 })
        .await
        .expect("count");
    assert_eq!(once, ids.len() as u64, "every document changed exactly once");
}

#[tokio::test]
async fn a_backfill_walks_string_ids_in_binary_order_whatever_the_collections_collation() {
    let db = fresh_database("real_collation_walk").await;
    if skip_unless_real(
        &db,
        "a collection's default collation must change how `_id`s sort and compare, which the \
         emulator ignores",
    )
    .await
    {
        return;
    }
    use schema_core::mongodb::options::{Collation, CollationStrength};
    // Case-insensitive: `a1 < B2 < c3 < D4` under it, `B2 < D4 < a1 < c3`
    // in binary order. (`_id`s that differ only by case cannot both exist
    // here: the `_id` index takes the collection's collation.)
    let case_insensitive = Collation::builder()
        .locale("en")
        .strength(CollationStrength::Secondary)
        .build();
    db.create_collection("people")
        .collation(case_insensitive)
        .await
        .expect("create the collection");
    let ids = ["a1", "B2", "c3", "D4", "e5", "F6", "g7"];
    let people: Vec<Document> = ids.iter().map(|id| doc! { "_id": *id, "n": 0 }).collect();
    db.collection::<Document>("people")
        .insert_many(people)
        .await
        .expect("insert");

    // Batches of 2 end between ids whose order the two collations disagree on.
    let report = schema_core::data::Backfill::new(&db, "people")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(2)
        .run()
        .await
        .expect("the walk goes in binary order, which it checks");
    assert_eq!(report.visited, ids.len() as u64);
    let once = db
        .collection::<Document>("people")
        .count_documents(doc! { "n": 1 })
        .await
        .expect("count");
    assert_eq!(once, ids.len() as u64, "every document changed exactly once");
}

/// Every index shape the helpers offer, and a validator, on one collection.
#[schema_core::migration(id = "r_0001_every_shape", group = "real_shapes")]
async fn every_shape(db: &Database) -> Result<(), Error> {
    use schema_core::indexes::{descending, keys};
    use schema_core::mongodb::IndexModel;
    use schema_core::mongodb::options::{Collation, CollationStrength, IndexOptions};

    let collated = IndexOptions::builder()
        .collation(
            Collation::builder()
                .locale("fr")
                .strength(CollationStrength::Secondary)
                .build(),
        )
        .build();
    let hidden = IndexOptions::builder().hidden(true).build();
    ensure_indexes(
        db,
        "shapes",
        [
            descending("at"),
            keys(doc! { "tenant": 1, "created": -1 }),
            ascending("status").partial(doc! { "status": { "$exists": true } }),
            ascending("nickname").sparse(),
            IndexModel::builder()
                .keys(doc! { "name": 1 })
                .options(collated)
                .build(),
            text(&["title", "body"])
                .weights(doc! { "title": 5 })
                .default_language("french"),
            ttl("expires_at", Duration::from_secs(600)),
            IndexModel::builder()
                .keys(doc! { "rarely": 1 })
                .options(hidden)
                .build(),
            ascending("code").unique(),
        ],
    )
    .await?;
    let validator = Validator::new(doc! { "bsonType": "object", "required": ["at"] })
        .level(ValidationLevel::Moderate)
        .action(ValidationAction::Warn);
    set_validator(db, "shapes", validator).await
}

#[tokio::test]
async fn verify_finds_no_drift_after_apply_for_every_index_shape_and_a_validator() {
    let db = fresh_database("real_verify_shapes").await;
    if skip_unless_real(
        &db,
        "a live database must list descending, partial, sparse, collated, text, TTL and hidden \
         indexes and a validator as declared; the emulator drops most of these options and keeps \
         no validators",
    )
    .await
    {
        return;
    }
    let manager = schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_shapes").expect("a valid set"));
    let snapshot = manager.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.collection("shapes").expect("shapes").indexes().len(), 9);
    manager.apply_all().await.expect("apply");
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:#?}");

    // A TTL changed by hand, as an operator would.
    db.run_command(doc! { "collMod": "shapes", "index": { "keyPattern": { "expires_at": 1 }, "expireAfterSeconds": 60 } })
        .await
        .expect("collMod");
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert_eq!(drift.changed.len(), 1, "{drift:#?}");
    assert_eq!(
        drift.changed[0].details,
        ["expireAfterSeconds: declared 600, existing 60"]
    );
}

#[tokio::test]
async fn the_example_application_verifies_clean_against_its_checked_in_snapshot() {
    let db = fresh_database("real_verify_example").await;
    if skip_unless_real(
        &db,
        "the example's descending, text and TTL indexes and its validator must be listed as \
         declared; the emulator drops directions, does not list text indexes and keeps no validators",
    )
    .await
    {
        return;
    }
    let manager = schema_core::SchemaManager::new(db.clone());
    manager.apply_all().await.expect("apply");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/schema.json");
    let snapshot = schema_core::snapshot::Snapshot::from_json(
        &std::fs::read_to_string(file).expect("the example's snapshot"),
    )
    .expect("a snapshot");
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:#?}");
}

/// Builds an index on the 200,000 documents of `big`: long enough to be
/// seen in progress.
/// Fills `big` with 200,000 documents whose labels sort in no useful
/// order, then starts applying `real_server_build` (an index on `label`,
/// a build that takes seconds) on a task: the manager and that task.
async fn start_a_long_build(
    db: &Database,
) -> (
    schema_core::SchemaManager,
    tokio::task::JoinHandle<Result<schema_core::ApplyReport, schema_core::Error>>,
) {
    let big = db.collection::<Document>("big");
    for batch in 0..20 {
        let documents = (0..10_000).map(|n| {
            let n = batch * 10_000 + n;
            doc! { "n": n, "label": format!("{:>12}-{}", n * 7919 % 200_000, "x".repeat(40)) }
        });
        big.insert_many(documents).await.expect("insert");
    }
    let manager = schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_server_build").expect("the group is valid"));
    let applying = tokio::spawn({
        let manager = manager.clone();
        async move { manager.apply_all().await }
    });
    (manager, applying)
}

#[schema_core::migration(id = "real_0001_big_index", group = "real_server_build")]
async fn big_index(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "big", [ascending("label")]).await
}

#[tokio::test]
async fn an_index_build_in_progress_shows_in_status_with_the_servers_numbers() {
    let db = fresh_database("real_index_build").await;
    if skip_unless_real(
        &db,
        "$currentOp must list the running createIndexes with progress.done and progress.total; the \
         emulator's currentOp is always empty",
    )
    .await
    {
        return;
    }
    let (manager, applying) = start_a_long_build(&db).await;
    let mut seen = Vec::new();
    while !applying.is_finished() {
        let status = manager.status().await.expect("status");
        seen.extend(
            status
                .index_builds
                .into_iter()
                .filter(|build| build.collection == "big" && build.total.is_some()),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    applying.await.expect("the task").expect("apply");
    let build = seen
        .first()
        .expect("the build was seen in progress, with its numbers");
    assert_eq!(build.indexes, ["label_1"], "{build:?}");
    assert!(build.done <= build.total, "{build:?}");
}

#[schema_core::migration(id = "r_slow_batches", group = "real_server_slow_batches")]
async fn slow_batches(db: &Database) -> Result<(), Error> {
    // Each document's update builds and measures a long array: a batch of
    // twenty takes a noticeable part of a second on any server.
    let update = vec![doc! { "$set": {
        "n": { "$add": ["$n", 1] },
        "burned": { "$size": { "$range": [0, 400_000] } },
    } }];
    schema_core::data::Backfill::new(db, "heavy")
        .update(update)
        .batch_size(20)
        .run()
        .await?;
    Ok(())
}

/// On a replica set each batch and its checkpoint are one transaction,
/// whose snapshot the batch's update fixes. With a 900 ms lease renewals
/// are due every 300 ms, and each batch's update here takes longer than
/// that: a renewal landing between the update and the checkpoint's write
/// would move the lock's version after the snapshot, and the checkpoint's
/// write would match nothing there and read as a takeover. The backfill
/// must complete, every document changed once.
#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_whose_batches_outlast_a_renewal_interval_completes_on_a_replica_set() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let db = fresh_database("real_slow_batches").await;
    if schema_tests::server::require_replica_set_members(
        &db,
        1,
        "only a real replica set isolates a transaction's snapshot from the renewals beside it; \
         the emulator isolates nothing, and a standalone server runs no transaction",
    )
    .await
    {
        return;
    }
    let heavy = db.collection::<Document>("heavy");
    heavy
        .insert_many((0..100).map(|n| doc! { "_id": n, "n": 0 }))
        .await
        .expect("insert");
    let batches: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let noted = batches.clone();
    schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_server_slow_batches").expect("the group is valid"))
        .lock_lease(Duration::from_millis(900))
        .on_progress(move |_| noted.lock().expect("not poisoned").push(Instant::now()))
        .apply_all()
        .await
        .expect("the backfill completes");
    // The fault: a batch took longer than a renewal interval.
    let batches = batches.lock().expect("not poisoned").clone();
    // From one batch's end to the next's (the first event is the start).
    let longest = batches
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest > Duration::from_millis(300),
        "no batch outlasted a renewal interval ({longest:?}): make each document's update heavier"
    );
    let counts: Vec<i32> = schema_tests::documents(&db, "heavy")
        .await
        .iter()
        .map(|document| document.get_i32("n").unwrap_or(-1))
        .collect();
    assert_eq!(counts, vec![1; 100], "every document changed once");
}

/// Runs `backfill` on `items` three times, with batches of 1, 2 and 3, so
/// that batches end at every `_id` in turn; every document must be changed
/// once by each walk.
async fn walk_three_ways(db: &Database, count: u64) {
    for size in 1..=3 {
        let report = schema_core::data::Backfill::new(db, "items")
            .update(doc! { "$inc": { "n": 1 } })
            .batch_size(size)
            .run()
            .await
            .unwrap_or_else(|error| panic!("batches of {size}: {error}"));
        assert_eq!(report.visited, count, "batches of {size}");
    }
    let all = db
        .collection::<Document>("items")
        .count_documents(doc! { "n": 3 })
        .await
        .expect("count");
    assert_eq!(all, count, "every document changed once by each walk");
}

#[tokio::test]
async fn a_backfill_visits_a_nan_id_the_other_numbers_and_javascript_ids_once_each() {
    let db = fresh_database("real_nan_ids").await;
    if skip_unless_real(
        &db,
        "a NaN `_id` must sort below every other number while `$gt: NaN` matches none, and \
         JavaScript-code `_id`s must sort after timestamps, as MongoDB does; the emulator keeps \
         neither order",
    )
    .await
    {
        return;
    }
    use schema_core::mongodb::bson::Timestamp;
    let ids = [
        Bson::MinKey,
        Bson::Null,
        Bson::Double(f64::NAN),
        Bson::Double(f64::NEG_INFINITY),
        Bson::Int32(-3),
        Bson::Int64(0),
        Bson::Double(2.5),
        Bson::Double(f64::INFINITY),
        Bson::String("s".into()),
        Bson::Timestamp(Timestamp {
            time: 1,
            increment: 1,
        }),
        Bson::JavaScriptCode("a()".into()),
        Bson::JavaScriptCode("b()".into()),
        Bson::MaxKey,
    ];
    let items: Vec<Document> = ids.iter().map(|id| doc! { "_id": id.clone(), "n": 0 }).collect();
    db.collection::<Document>("items")
        .insert_many(items)
        .await
        .expect("insert");
    walk_three_ways(&db, ids.len() as u64).await;
}

#[tokio::test]
async fn a_backfill_whose_filter_count_documents_refuses_runs_without_a_total() {
    let db = fresh_database("real_where_filter").await;
    if skip_unless_real(
        &db,
        "`countDocuments` must refuse `$where` as MongoDB's `$match` does, and `find` must run it; \
         the emulator runs no JavaScript",
    )
    .await
    {
        return;
    }
    schema_tests::items::insert(&db, "items", schema_tests::items::integers(90)).await;
    let report = schema_core::data::Backfill::new(&db, "items")
        .filter(doc! { "$where": "this.k == 1" })
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(10)
        .run()
        .await
        .expect("the total only shows progress: the walk runs without one");
    assert_eq!((report.visited, report.batches), (30, 3));
    assert_eq!(
        schema_tests::items::tally(&db, "items").await,
        [(0, 60), (1, 30)].into()
    );
}

/// What `explain` says of `command`'s plan, as text.
async fn plan(db: &Database, command: Document) -> String {
    let explained = db
        .run_command(doc! { "explain": command.clone(), "verbosity": "queryPlanner" })
        .await
        .unwrap_or_else(|error| panic!("explain {command}: {error}"));
    explained
        .get_document("queryPlanner")
        .map(|planner| planner.to_string())
        .unwrap_or_else(|_| explained.to_string())
}

/// `command` as it was sent, without the session, cluster time and other
/// fields the driver adds, so that `explain` takes it.
fn as_sent(command: &Document, fields: &[&str]) -> Document {
    let mut kept = Document::new();
    for field in fields {
        if let Some(value) = command.get(*field) {
            kept.insert(*field, value.clone());
        }
    }
    kept
}

#[tokio::test]
async fn on_a_collection_with_a_default_collation_the_id_index_serves_each_batch() {
    let (db, sent) = schema_tests::monitored_database("real_collation_plans").await;
    if skip_unless_real(
        &db,
        "`explain` must show MongoDB's plans, and the `_id` index must carry the collection's \
         collation; the emulator's plans are SQLite's",
    )
    .await
    {
        return;
    }
    use schema_core::mongodb::bson::oid::ObjectId;
    use schema_core::mongodb::options::{Collation, CollationStrength};
    let case_insensitive = Collation::builder()
        .locale("en")
        .strength(CollationStrength::Secondary)
        .build();
    db.create_collection("events")
        .collation(case_insensitive)
        .await
        .expect("create the collection");
    let events: Vec<Document> = (0..600)
        .map(|_| doc! { "_id": ObjectId::new(), "n": 0 })
        .collect();
    db.collection::<Document>("events")
        .insert_many(events)
        .await
        .expect("insert");
    schema_tests::take_commands(&sent);
    let report = schema_core::data::Backfill::new(&db, "events")
        .filter(doc! { "n": { "$gte": 0 } })
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(100)
        .run()
        .await
        .expect("the backfill runs");
    assert_eq!(report.visited, 600);

    let commands = schema_tests::take_command_documents(&sent);
    // The reads after a position (not the first, which spans every type)
    // and every batch's update.
    let reads: Vec<Document> = commands
        .iter()
        .filter(|command| command.get_str("find") == Ok("events"))
        .filter(|command| {
            command
                .get_document("filter")
                .is_ok_and(|filter| filter.contains_key("_id"))
        })
        .map(|command| {
            as_sent(
                command,
                &["find", "filter", "sort", "projection", "limit", "collation"],
            )
        })
        .collect();
    let updates: Vec<Document> = commands
        .iter()
        .filter(|command| command.get_str("update") == Ok("events"))
        .map(|command| as_sent(command, &["update", "updates"]))
        .collect();
    assert_eq!((reads.len(), updates.len()), (6, 6), "{commands:?}");
    for command in reads.into_iter().chain(updates) {
        let plan = plan(&db, command.clone()).await;
        assert!(plan.contains("IXSCAN"), "{command}: {plan}");
        assert!(!plan.contains("\"COLLSCAN\""), "{command}: {plan}");
        assert!(
            !plan.contains("\"SORT\""),
            "no sort of the remaining keys: {command}: {plan}"
        );
    }
}

/// A text index created, then dropped by the fields it was declared on.
#[schema_core::migration(id = "real_0001_text", group = "real_text_drop")]
async fn create_text(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "articles", [text(&["title"]), ascending("slug")]).await
}

#[schema_core::migration(
    id = "real_0002_drop_text",
    group = "real_text_drop",
    after = "real_0001_text"
)]
async fn drop_text(db: &Database) -> Result<(), Error> {
    schema_core::indexes::drop_index(db, "articles", doc! { "title": "text" }).await
}

#[tokio::test]
async fn a_text_index_dropped_by_its_fields_is_gone_and_the_snapshot_agrees() {
    let db = fresh_database("real_text_drop").await;
    if skip_unless_real(
        &db,
        "a text index is stored under { _fts: \"text\", _ftsx: 1 }, so a drop by the declared keys \
         is refused and the index must be dropped by name; the emulator does not list text indexes",
    )
    .await
    {
        return;
    }
    let manager = schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_text_drop").expect("a valid set"));
    let snapshot = manager.snapshot().await.expect("snapshot");
    let declared: Vec<&str> = snapshot
        .collection("articles")
        .expect("articles")
        .indexes()
        .iter()
        .filter_map(|index| index.get_str("name").ok())
        .collect();
    assert_eq!(declared, ["slug_1"]);
    manager.apply_all().await.expect("apply");
    let listed: Vec<String> = index_documents(&db, "articles")
        .await
        .iter()
        .filter_map(|index| index.get_str("name").ok().map(str::to_owned))
        .collect();
    assert_eq!(listed, ["_id_", "slug_1"], "the text index is gone");
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:#?}");
    // Again: the index is absent, which is no error.
    schema_core::indexes::drop_index(&db, "articles", doc! { "title": "text" })
        .await
        .expect("dropping what is gone");
}

/// A collection created with a default collation, and an index declared
/// without one, which inherits it.
#[schema_core::migration(id = "real_0001_collated_collection", group = "real_default_collation")]
async fn collated_collection(db: &Database) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let created = db
        .run_command(doc! { "create": "people", "collation": { "locale": "fr", "strength": 2 } })
        .await;
    match created {
        Ok(_) => {}
        // NamespaceExists: made by an earlier run.
        Err(error) if matches!(&*error.kind, schema_core::mongodb::error::ErrorKind::Command(command) if command.code == 48) =>
            {}
        Err(error) => return Err(error.into()),
    }
    ensure_indexes(db, "people", [ascending("name")]).await?;
    Ok(())
}

#[tokio::test]
async fn an_index_inheriting_the_collections_default_collation_is_no_drift() {
    let db = fresh_database("real_default_collation").await;
    if skip_unless_real(
        &db,
        "an index declared without a collation on a collection with a default collation is listed \
         with the collection's collation filled in; the emulator keeps no collation",
    )
    .await
    {
        return;
    }
    let manager = schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_default_collation").expect("a valid set"));
    let snapshot = manager.snapshot().await.expect("snapshot");
    manager.apply_all().await.expect("apply");
    let listed = index(&db, "people", "name_1").await.expect("name_1");
    assert_eq!(
        listed
            .get_document("collation")
            .and_then(|collation| collation.get_str("locale")),
        Ok("fr"),
        "the server fills the collection's collation in: {listed:?}"
    );
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:#?}");
}

/// A wildcard index with a projection of dotted paths.
#[schema_core::migration(id = "real_0001_wildcard", group = "real_wildcard")]
async fn wildcard(db: &Database) -> Result<(), Error> {
    use schema_core::mongodb::IndexModel;
    use schema_core::mongodb::options::IndexOptions;

    let options = IndexOptions::builder()
        .wildcard_projection(doc! { "attributes.color": 1, "attributes.size": 1, "sku": 1 })
        .build();
    ensure_indexes(
        db,
        "items",
        [IndexModel::builder()
            .keys(doc! { "$**": 1 })
            .options(options)
            .build()],
    )
    .await
}

#[tokio::test]
async fn a_wildcard_projection_is_no_drift_however_the_server_lists_it() {
    let db = fresh_database("real_wildcard").await;
    if skip_unless_real(
        &db,
        "MongoDB 6.0.0 to 6.0.4 list a wildcard projection normalized, later versions as \
         submitted; verify must find no drift on either; the emulator has no wildcard indexes",
    )
    .await
    {
        return;
    }
    let manager = schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_wildcard").expect("a valid set"));
    let snapshot = manager.snapshot().await.expect("snapshot");
    manager.apply_all().await.expect("apply");
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:#?}");
}

/// A migration that chooses a commit quorum builds its index on every
/// topology: the quorum goes out to a replica set member and through a
/// `mongos` (to each shard's primary), and is left out on a standalone,
/// which refuses one (BadValue). It runs on every real server, so a run
/// declared `sharded` goes through its `mongos`.
#[tokio::test]
async fn a_chosen_commit_quorum_goes_out_where_it_applies_and_the_index_builds_on_every_topology() {
    let (db, sent) = monitored_database("real_commit_quorum").await;
    if skip_unless_real(
        &db,
        "a replica set member or a mongos takes a commitQuorum and a standalone refuses one; the \
         emulator ignores it",
    )
    .await
    {
        return;
    }
    let hello = db
        .client()
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .expect("hello");
    let takes_quorum = hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid");
    take_command_documents(&sent);

    ensure_indexes(&db, "events", [ascending("at")])
        .commit_quorum(schema_core::mongodb::options::CommitQuorum::Majority)
        .await
        .expect("built, with a majority quorum where one applies");
    let commands = take_command_documents(&sent);
    let create: Vec<&Document> = commands
        .iter()
        .filter(|command| command.contains_key("createIndexes"))
        .collect();
    assert_eq!(create.len(), 1, "{commands:?}");
    if takes_quorum {
        assert_eq!(create[0].get_str("commitQuorum"), Ok("majority"), "{create:?}");
    } else {
        assert!(!create[0].contains_key("commitQuorum"), "{create:?}");
    }
    assert!(index(&db, "events", "at_1").await.is_some());
}

/// Whether a build waits for its commit quorum is read where it can be
/// known, and claimed nowhere else: on a standalone none waits (it has no
/// quorum); through a `mongos` it is unknown (the shards' records are not
/// shown there); on a replica set member the member's record of its
/// builds is read (this run's user may read it), so it is known, and a
/// build said to wait has this member among those that voted. It runs on
/// every real server, so a run declared `sharded` goes through its
/// `mongos`.
#[tokio::test]
async fn a_builds_commit_quorum_wait_is_known_where_it_can_be_and_claimed_nowhere_else() {
    let db = fresh_database("real_commit_quorum_wait").await;
    if skip_unless_real(
        &db,
        "$currentOp must list the running createIndexes and a replica set member must keep its \
         record of builds in config.system.indexBuilds; the emulator's currentOp is always empty",
    )
    .await
    {
        return;
    }
    let hello = db
        .client()
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .expect("hello");
    let (manager, applying) = start_a_long_build(&db).await;
    let member = hello.get_str("setName").is_ok();
    let mut seen = Vec::new();
    // On a replica set member, the record of the build the status reads,
    // read here too: "not waiting" must come from a record found, not from
    // one the status failed to match.
    let mut records = 0;
    while !applying.is_finished() {
        if member {
            let found = db
                .client()
                .database("config")
                .collection::<Document>("system.indexBuilds")
                .count_documents(doc! { "indexNames": "label_1" })
                .await
                .expect("the build records");
            records += usize::try_from(found).unwrap_or(usize::MAX);
        }
        let status = manager.status().await.expect("status");
        seen.extend(
            status
                .index_builds
                .into_iter()
                .filter(|build| build.collection == "big"),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    applying.await.expect("the task").expect("apply");
    assert!(!seen.is_empty(), "the build was seen in progress");
    if member && seen.len() >= 3 {
        assert!(records > 0, "the member kept a record of the build while it ran");
    }
    for build in &seen {
        if hello.get_str("msg") == Ok("isdbgrid") {
            assert_eq!(build.commit_quorum, CommitQuorumWait::Unknown, "{build:?}");
        } else if let (Ok(_), Ok(member)) = (hello.get_str("setName"), hello.get_str("me")) {
            match &build.commit_quorum {
                CommitQuorumWait::NotWaiting => {}
                CommitQuorumWait::Waiting { ready, .. } => {
                    assert!(ready.iter().any(|ready| ready == member), "{build:?}");
                }
                other => panic!("the member's record was read, yet {other:?}: {build:?}"),
            }
        } else {
            assert_eq!(build.commit_quorum, CommitQuorumWait::NotWaiting, "{build:?}");
        }
    }
}

/// A collection whose default collation orders `"a"` before `"B"`, where
/// binary order puts `"B"` first, with document `_id`s of which the first
/// holds no string: the read after it must still keep the simple
/// collation, since later documents hold strings, or one of them is
/// skipped without a word.
#[tokio::test]
async fn document_ids_on_a_collection_with_a_default_collation_are_each_visited_once() {
    let db = fresh_database("real_collated_documents").await;
    if skip_unless_real(
        &db,
        "a collection's default collation must order strings inside document `_id`s unlike \
         binary order; the emulator keeps no collation",
    )
    .await
    {
        return;
    }
    db.run_command(doc! { "create": "items", "collation": { "locale": "en", "strength": 2 } })
        .await
        .expect("create with a collation");
    let ids = [
        doc! { "k": 1 },
        doc! { "k": 2, "s": "a" },
        doc! { "k": 2, "s": "B" },
        doc! { "k": 3 },
    ];
    let items: Vec<Document> = ids.iter().map(|id| doc! { "_id": id.clone(), "n": 0 }).collect();
    db.collection::<Document>("items")
        .insert_many(items)
        .await
        .expect("insert");
    walk_three_ways(&db, ids.len() as u64).await;
}

#[schema_core::migration(id = "r_odd_positions", group = "real_server_odd_positions")]
async fn odd_positions(db: &Database) -> Result<(), Error> {
    schema_tests::items::count_each(db, 1).await
}

/// Under a manager on a replica set, each batch of one document commits
/// with its checkpoint, whose position is then a `null` `_id` and a `NaN`
/// one in turn: the walk finds each committed position in its batch
/// (`NaN` is not `==` to itself) and goes on, every document once.
#[tokio::test(flavor = "multi_thread")]
async fn a_managed_backfill_on_a_replica_set_commits_batches_ending_at_null_and_nan_ids() {
    let db = fresh_database("real_odd_positions").await;
    if schema_tests::server::require_replica_set_members(
        &db,
        1,
        "the batches of a managed backfill are transactions only on a replica set; the emulator \
         cannot store a `NaN` `_id`",
    )
    .await
    {
        return;
    }
    let ids = [
        Bson::MinKey,
        Bson::Null,
        Bson::Double(f64::NAN),
        Bson::Double(f64::NEG_INFINITY),
        Bson::Int32(1),
        Bson::String("s".into()),
    ];
    let items: Vec<Document> = ids.iter().map(|id| doc! { "_id": id.clone(), "n": 0 }).collect();
    db.collection::<Document>("items")
        .insert_many(items)
        .await
        .expect("insert");
    schema_core::SchemaManager::new(db.clone())
        .migrations(schema_core::Migrations::group("real_server_odd_positions").expect("the group is valid"))
        .apply_all()
        .await
        .expect("apply");
    let all = db
        .collection::<Document>("items")
        .count_documents(doc! { "n": 1 })
        .await
        .expect("count");
    assert_eq!(all, ids.len() as u64, "every document changed once");
}
