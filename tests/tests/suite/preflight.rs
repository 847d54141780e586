//! Preflight as a whole: what it learns from the scratch run, that it
//! leaves the live database as it was, what it costs when nothing is
//! pending, a start that runs it (`preflight_at_start`), and the command
//! line's `preflight` with its exit statuses. The probes each have their
//! own module (`preflight_indexes`, `preflight_data`, `preflight_usage`);
//! here the finding is an index conflict, which the probes read from the
//! listing alone.

use std::process::Output;

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::preflight::{Code, Severity};
use schema_core::{Error, Migrations, Policy, SchemaManager, migration};
use schema_tests::live::Live;
use schema_tests::{
    fresh_database, monitored_database, note_ran, ran, record_ids, run_on, scratch_databases, stdout,
    take_commands,
};

/// Parcels are found by their code, which is unique
#[migration(id = "pf_0001_parcels_unique", group = "preflight")]
async fn parcels_unique(db: &Database) -> Result<(), Error> {
    note_ran(db, "pf_0001_parcels_unique")
        .await
        .map_err(|error| Error::MigrationFailed {
            id: "pf_0001_parcels_unique".into(),
            source: Box::new(error),
        })?;
    ensure_indexes(
        db,
        "parcels",
        [ascending("code").unique().named("parcels_by_code")],
    )
    .await
}

#[migration(id = "pf_0002_routes", group = "preflight", after = "pf_0001_parcels_unique")]
async fn routes(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "routes", [ascending("depot")]).await
}

/// The same index, its conflict weighed and accepted
#[migration(
    id = "pfa_0001_parcels_unique",
    group = "preflight_accepted",
    accept = "index_conflict"
)]
async fn parcels_unique_accepted(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "parcels",
        [ascending("code").unique().named("parcels_by_code")],
    )
    .await
}

#[migration(id = "pw_0001_start", group = "preflight_warn")]
async fn warned_start(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "routes", [ascending("depot")]).await
}

/// Sessions expire an hour after their date, built after the start
#[migration(id = "pw_0002_sessions_ttl", group = "preflight_warn", background)]
async fn warned_sessions_ttl(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "sessions",
        [schema_core::indexes::ttl(
            "expires_at",
            std::time::Duration::from_secs(3600),
        )],
    )
    .await
}

#[migration(id = "pff_0001_fails", group = "preflight_failing")]
async fn fails(_db: &Database) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("the migration's own failure"))
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid group"))
}

/// `collection` with `count` documents and a unique index on `field`
/// under another name than a declared one's (`by_<field>`): the same keys
/// and signature, which the server refuses to build twice.
async fn documents_under_a_unique_index(db: &Database, collection: &str, field: &str, count: i32) {
    db.collection::<Document>(collection)
        .insert_many((0..count).map(|n| doc! { field: n }))
        .await
        .unwrap();
    db.run_command(doc! {
        "createIndexes": collection,
        "indexes": [{ "key": { field: 1 }, "name": format!("by_{field}"), "unique": true }],
    })
    .await
    .unwrap();
}

/// Drops the index of `collection` on `keys`, by its keys: the servers the
/// tests run on name indexes differently.
async fn drop_index_on(db: &Database, collection: &str, keys: Document) {
    db.run_command(doc! { "dropIndexes": collection, "index": keys })
        .await
        .unwrap();
}

#[tokio::test]
async fn preflight_finds_what_a_pending_migration_fails_on_and_leaves_the_database_as_it_was() {
    // It creates and drops a scratch database, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("preflight_conflict").await;
    documents_under_a_unique_index(&db, "parcels", "code", 5).await;
    let before = Live::read(&db).await;

    let report = manager(&db, "preflight").preflight().await.expect("preflight");

    assert_eq!(report.pending, ["pf_0001_parcels_unique", "pf_0002_routes"]);
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let finding = &report.findings[0];
    assert_eq!(finding.migration, "pf_0001_parcels_unique");
    assert_eq!(
        (finding.code, finding.severity),
        (Code::IndexConflict, Severity::Fails)
    );
    assert_eq!(finding.collection, "parcels");
    assert_eq!(finding.index.as_deref(), Some("parcels_by_code"));
    assert!(!finding.accepted);
    assert!(
        finding.message.contains("the same keys and signature")
            && finding.message.contains("drop the existing index"),
        "{}",
        finding.message
    );
    assert!(report.fails());
    assert!(report.inconclusive.is_empty(), "{report:?}");
    // Nothing written here: no record, no lock, no index, no collection,
    // and no migration ran here (only in the scratch database, dropped).
    before.assert_unchanged(&db).await;
    assert!(ran(&db).await.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["findings"][0]["code"], "index_conflict", "{json}");
    assert_eq!(json["findings"][0]["severity"], "fails", "{json}");
    assert_eq!(json["inconclusive"], serde_json::json!([]), "{json}");
}

#[tokio::test]
async fn an_accepted_finding_is_listed_as_accepted_and_fails_nothing() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("preflight_accepted").await;
    documents_under_a_unique_index(&db, "parcels", "code", 5).await;
    let before = Live::read(&db).await;
    let manager = manager(&db, "preflight_accepted");
    let report = manager.preflight().await.expect("preflight");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].code, Code::IndexConflict);
    assert!(report.findings[0].accepted, "{report:?}");
    assert!(!report.fails());
    assert_eq!(report.denied(Severity::Info).count(), 0);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["findings"][0]["accepted"], true, "{json}");
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn with_nothing_pending_preflight_sends_one_read_and_applies_nothing_anywhere() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let (db, sent) = monitored_database("preflight_nothing").await;
    manager(&db, "preflight").apply_all().await.expect("apply");
    take_commands(&sent);
    let report = manager(&db, "preflight").preflight().await.expect("preflight");
    assert!(
        report.pending.is_empty() && report.findings.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        take_commands(&sent),
        [("find".to_owned(), "schema_versions".to_owned())],
        "one read of the records, and no scratch run"
    );
    // A start that runs preflight, with nothing pending, costs what a start
    // costs: one read.
    manager(&db, "preflight")
        .preflight_at_start(Policy::Fail)
        .apply_all()
        .await
        .expect("nothing to apply");
    assert_eq!(
        take_commands(&sent),
        [("find".to_owned(), "schema_versions".to_owned())],
        "the start's one read, and no preflight"
    );
    assert!(scratch_databases(&db).await.is_empty());
}

#[tokio::test]
async fn a_migration_failing_in_the_scratch_run_fails_preflight_and_its_scratch_is_dropped() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("preflight_failing").await;
    let error = manager(&db, "preflight_failing")
        .preflight()
        .await
        .expect_err("the migration fails");
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "pff_0001_fails"),
        "{error:?}"
    );
    assert!(scratch_databases(&db).await.is_empty());
    assert!(db.list_collection_names().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_start_that_runs_preflight_refuses_a_migration_that_would_fail_before_anything_runs() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("preflight_start").await;
    documents_under_a_unique_index(&db, "parcels", "code", 5).await;
    let before = Live::read(&db).await;

    let error = manager(&db, "preflight")
        .preflight_at_start(Policy::Fail)
        .apply_all()
        .await
        .expect_err("refused");

    let Error::PreflightFailed {
        migration,
        code,
        collection,
        others,
        ..
    } = &error
    else {
        panic!("expected PreflightFailed, got {error:?}");
    };
    assert_eq!(
        (migration.as_str(), code.as_str(), collection.as_str(), *others),
        ("pf_0001_parcels_unique", "index_conflict", "parcels", 0)
    );
    assert_eq!(error.kind(), "preflight_failed");
    assert!(
        error.to_string().contains("accept = \"index_conflict\""),
        "{error}"
    );
    // Refused before the lock: nothing ran, nothing is recorded or locked.
    assert!(ran(&db).await.is_empty());
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    before.assert_unchanged(&db).await;

    // Once the conflicting index is gone, the same start applies.
    drop_index_on(&db, "parcels", doc! { "code": 1 }).await;
    let report = manager(&db, "preflight")
        .preflight_at_start(Policy::Fail)
        .apply_all()
        .await
        .expect("nothing fails now");
    assert_eq!(report.applied, ["pf_0001_parcels_unique", "pf_0002_routes"]);
    assert!(scratch_databases(&db).await.is_empty());
}

/// The command line of `schema-snapshot` (orders with a unique `order_id`,
/// sessions with a TTL) on `db`.
fn cli(db: &Database, args: &[&str]) -> Output {
    run_on(env!("CARGO_BIN_EXE_schema-snapshot"), db, args)
}

#[tokio::test]
async fn the_command_line_exits_3_on_a_failing_finding_and_0_once_it_is_gone() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("preflight_cli").await;
    documents_under_a_unique_index(&db, "orders", "order_id", 3).await;
    let before = Live::read(&db).await;

    let text = cli(&db, &["preflight"]);
    assert_eq!(text.status.code(), Some(3), "{text:?}");
    let shown = stdout(&text);
    assert!(
        shown.starts_with("preflight of 2 pending migrations: p_0001_orders, p_0002_sessions\n"),
        "{shown}"
    );
    assert!(
        shown.contains("p_0001_orders\n  fails  index_conflict  orders.order_id_1: "),
        "{shown}"
    );

    let json = cli(&db, &["preflight", "--json"]);
    assert_eq!(json.status.code(), Some(3), "{json:?}");
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(
        value["pending"],
        serde_json::json!(["p_0001_orders", "p_0002_sessions"])
    );
    assert_eq!(value["findings"][0]["code"], "index_conflict", "{value}");
    assert_eq!(value["findings"][0]["index"], "order_id_1", "{value}");
    assert_eq!(value["findings"][0]["accepted"], false, "{value}");
    assert_eq!(value["inconclusive"], serde_json::json!([]), "{value}");
    before.assert_unchanged(&db).await;

    drop_index_on(&db, "orders", doc! { "order_id": 1 }).await;
    let clean = cli(&db, &["preflight"]);
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    assert!(
        stdout(&clean).ends_with("0 findings (0 denied, 0 accepted), 0 probes inconclusive\n"),
        "{}",
        stdout(&clean)
    );
    assert!(scratch_databases(&db).await.is_empty());
    assert!(
        record_ids(&db, "schema_versions").await.is_empty(),
        "preflight records nothing"
    );

    // A probe needs some time: no time at all is a usage error.
    let no_time = cli(&db, &["preflight", "--max-time", "0"]);
    assert_eq!(no_time.status.code(), Some(2), "{no_time:?}");
    // Preflight that cannot run (a record it cannot read): exit 1.
    db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "p_0001_orders", "checksum": 5 })
        .await
        .unwrap();
    let unusable = cli(&db, &["preflight", "--json"]);
    assert_eq!(unusable.status.code(), Some(1), "{unusable:?}");
    let value: serde_json::Value = serde_json::from_slice(&unusable.stdout).expect("one JSON document");
    assert_eq!(value["error"]["kind"], "malformed_record", "{value}");
}

/// Under `Policy::Warn` a start logs what preflight found and applies; the
/// background task that applies the background migration afterwards does
/// not run preflight again (it would replay the whole set into a scratch
/// database each time it tries).
#[tokio::test]
async fn a_start_warned_by_preflight_logs_each_finding_once_and_applies() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("preflight_warn").await;
    let an_hour_and_more_ago = schema_core::mongodb::bson::DateTime::from_millis(
        schema_core::mongodb::bson::DateTime::now().timestamp_millis() - 2 * 3600 * 1000,
    );
    db.collection::<Document>("sessions")
        .insert_many((0..2).map(|_| doc! { "expires_at": an_hour_and_more_ago }))
        .await
        .unwrap();
    // On every member before the probes may read one.
    schema_tests::live::settle(&db).await;
    let manager = manager(&db, "preflight_warn").preflight_at_start(Policy::Warn);

    let (applied, logs) = schema_tests::logs::logged(async {
        let report = manager.apply_all().await?;
        manager.wait_applied(std::time::Duration::from_secs(60)).await?;
        Ok::<_, Error>(report)
    })
    .await;

    let report = applied.expect("applied despite the finding");
    assert_eq!(report.applied, ["pw_0001_start"]);
    assert_eq!(report.background, ["pw_0002_sessions_ttl"]);
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["pw_0001_start", "pw_0002_sessions_ttl"]
    );
    let warned: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("preflight:") && line.contains("ttl_deletes"))
        .collect();
    assert_eq!(warned.len(), 1, "one warning, at the start: {logs}");
    assert!(warned[0].contains("pw_0002_sessions_ttl"), "{logs}");
    assert!(scratch_databases(&db).await.is_empty());
}
