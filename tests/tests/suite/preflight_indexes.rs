//! Preflight of index declarations: `unique_duplicates` (existing documents
//! sharing a key of a new unique index) and `index_conflict` (an index
//! already there with the declared name or keys and other options).
//!
//! Each test declares its own group of migrations, fills a fresh database
//! (`fresh_with`) and runs `preflight_with` on it (`preflight`), then checks the findings and that the
//! live database is as it was: no record, no lock, no index, and no
//! scratch database left behind. The emulator groups single-field keys as
//! MongoDB does; compound keys and collations are checked against a real
//! server (skipped on the emulator, which groups every compound key into
//! one group and keeps no collation).

use std::time::Duration;

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys, ttl};
use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::options::{Collation, CollationStrength, IndexOptions};
use schema_core::mongodb::{Database, IndexModel};
use schema_core::preflight::{Code, Finding, Options, PreflightReport, Severity};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::live::{Live, fresh_with, insert_everywhere};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::server::skip_unless_real;
use schema_tests::{
    DATABASE_LISTINGS, SentCommands, fresh_database, monitored_database, take_command_documents,
};
use tokio::sync::MutexGuard;

#[migration(id = "pi_0001_unique_email", group = "preflight_unique_email")]
async fn unique_email(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "users", [ascending("email").unique()]).await
}

#[migration(id = "pi_0001_unique_active_email", group = "preflight_unique_partial")]
async fn unique_active_email(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "users",
        [ascending("email").unique().partial(doc! { "active": true })],
    )
    .await
}

#[migration(id = "pi_0001_unique_sparse_email", group = "preflight_unique_sparse")]
async fn unique_sparse_email(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "users", [ascending("email").unique().sparse()]).await
}

#[migration(id = "pi_0001_unique_first_item", group = "preflight_unique_positional")]
async fn unique_first_item(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "orders", [ascending("items.0.sku").unique()]).await
}

#[migration(id = "pi_0001_plain_email", group = "preflight_conflicts")]
async fn plain_email(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "users", [ascending("email")]).await
}

#[migration(
    id = "pi_0002_unique_login",
    group = "preflight_conflicts",
    after = "pi_0001_plain_email"
)]
async fn unique_login(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "users", [ascending("login").unique()]).await
}

#[migration(
    id = "pi_0003_sessions_ttl",
    group = "preflight_conflicts",
    after = "pi_0001_plain_email"
)]
async fn sessions_ttl(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "sessions", [ttl("expires_at", Duration::from_secs(60))]).await
}

#[migration(id = "pi_0001_unique_pair", group = "preflight_unique_compound")]
async fn unique_pair(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "pairs", [keys(doc! { "a": 1, "b": -1 }).unique()]).await
}

#[migration(id = "pi_0001_unique_name_any_case", group = "preflight_unique_collation")]
async fn unique_name_any_case(db: &Database) -> Result<(), Error> {
    let any_case = Collation::builder()
        .locale("en")
        .strength(CollationStrength::Secondary)
        .build();
    let index = IndexModel::builder()
        .keys(doc! { "name": 1 })
        .options(IndexOptions::builder().unique(true).collation(any_case).build())
        .build();
    ensure_indexes(db, "people", [index]).await
}

#[migration(id = "pi_0001_unique_tag", group = "preflight_unique_tags")]
async fn unique_tag(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "posts", [ascending("tags").unique()]).await
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid set"))
}

/// [`fresh_with`] on a client that notes the commands it sends, those of
/// the insert forgotten.
async fn monitored_with(
    test: &str,
    collection: &str,
    documents: Vec<Document>,
) -> (MutexGuard<'static, ()>, Database, SentCommands) {
    let alone = DATABASE_LISTINGS.lock().await;
    let (db, sent) = monitored_database(test).await;
    insert_everywhere(&db, collection, documents).await;
    take_command_documents(&sent);
    (alone, db, sent)
}

/// Runs preflight of `group` on `db` with `options`, and checks that it
/// left the live database as it was, with no scratch database behind.
async fn preflight(db: &Database, group: &str, options: &Options) -> PreflightReport {
    preflight_through(db, db, group, options).await
}

/// [`preflight`] by a manager on `through` (the same database through a
/// proxy), the live database read directly.
async fn preflight_through(
    db: &Database,
    through: &Database,
    group: &str,
    options: &Options,
) -> PreflightReport {
    let before = Live::read(db).await;
    let report = manager(through, group)
        .preflight_with(options)
        .await
        .expect("preflight");
    before.assert_unchanged(db).await;
    assert!(
        !before.has_bookkeeping(),
        "no record and no lock: {:?}",
        before.names()
    );
    report
}

/// The one finding of `code` in `report`.
fn only(report: &PreflightReport, code: Code) -> &Finding {
    let found: Vec<&Finding> = report.findings.iter().filter(|f| f.code == code).collect();
    let [finding] = found.as_slice() else {
        panic!("one {code} finding expected: {report:#?}");
    };
    finding
}

fn unique_findings(report: &PreflightReport) -> usize {
    report
        .findings
        .iter()
        .filter(|f| f.code == Code::UniqueDuplicates)
        .count()
}

/// The `aggregate` commands sent to the live database `db`.
fn aggregates_on(sent: &[Document], db: &Database) -> usize {
    sent.iter()
        .filter(|command| command.keys().next().map(String::as_str) == Some("aggregate"))
        .filter(|command| command.get_str("$db") == Ok(db.name()))
        .count()
}

#[tokio::test]
async fn duplicates_count_documents_missing_the_field_as_null_and_not_an_arrays_own_repeats() {
    let (_alone, db) = fresh_with(
        "pidx_counted",
        "users",
        vec![
            doc! { "_id": 1, "email": "a@example.com" },
            doc! { "_id": 2, "email": "a@example.com" },
            doc! { "_id": 3 },
            doc! { "_id": 4, "email": Bson::Null },
            doc! { "_id": 5, "email": ["b@example.com", "b@example.com"] },
            doc! { "_id": 6, "email": "c@example.com" },
            doc! { "_id": 7, "email": [] },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_email", &Options::default()).await;

    assert_eq!(report.pending, ["pi_0001_unique_email"]);
    assert!(report.inconclusive.is_empty(), "{report:#?}");
    let finding = only(&report, Code::UniqueDuplicates);
    assert_eq!(finding.migration, "pi_0001_unique_email");
    assert_eq!(finding.severity, Severity::Fails);
    assert_eq!(finding.collection, "users");
    assert_eq!(finding.index.as_deref(), Some("email_1"));
    // 1 and 2 share an address, 3 and 4 are both null; 5 repeats its own
    // element only, and the empty array of 7 is no null.
    assert_eq!(finding.count, 4, "{finding:#?}");
    assert!(finding.ids.is_empty(), "ids only when asked for");
    assert!(finding.message.contains("duplicate key"), "{}", finding.message);
    assert!(
        finding.message.contains("remove or merge the duplicates") && finding.message.contains("partial"),
        "{}",
        finding.message
    );
    assert!(!finding.message.contains("example.com"), "{}", finding.message);
    assert!(report.fails());
}

#[tokio::test]
async fn two_documents_sharing_one_array_element_are_duplicates() {
    let (_alone, db) = fresh_with(
        "pidx_multikey",
        "users",
        vec![
            doc! { "_id": 1, "email": ["d@example.com", "e@example.com"] },
            doc! { "_id": 2, "email": ["e@example.com", "f@example.com"] },
            doc! { "_id": 3, "email": ["g@example.com", "g@example.com"] },
            doc! { "_id": 4, "email": "h@example.com" },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_email", &Options::default()).await;

    let finding = only(&report, Code::UniqueDuplicates);
    assert_eq!(finding.count, 2, "{finding:#?}");
    assert!(finding.message.contains("share 1 key "), "{}", finding.message);
}

#[tokio::test]
async fn no_duplicates_no_finding_but_the_collection_was_read() {
    let (_alone, db, sent) = monitored_with(
        "pidx_clean",
        "users",
        vec![
            doc! { "_id": 1, "email": "a@example.com" },
            doc! { "_id": 2, "email": "b@example.com" },
            doc! { "_id": 3, "email": ["c@example.com", "d@example.com"] },
            doc! { "_id": 4 },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_email", &Options::default()).await;

    assert_eq!(unique_findings(&report), 0, "{report:#?}");
    assert!(report.inconclusive.is_empty(), "{report:#?}");
    assert_eq!(
        aggregates_on(&take_command_documents(&sent), &db),
        1,
        "one aggregation counted the keys"
    );
}

#[tokio::test]
async fn an_existing_unique_index_on_the_same_keys_spares_the_aggregation() {
    let (_alone, db, sent) = monitored_with(
        "pidx_same_index",
        "users",
        vec![doc! { "_id": 1, "email": "a@example.com" }, doc! { "_id": 2 }],
    )
    .await;
    let first = preflight(&db, "preflight_unique_email", &Options::default()).await;
    assert_eq!(unique_findings(&first), 0, "{first:#?}");
    assert_eq!(
        aggregates_on(&take_command_documents(&sent), &db),
        1,
        "without the index, the keys are counted"
    );

    db.collection::<Document>("users")
        .create_index(ascending("email").named("by_email").unique())
        .await
        .expect("the unique index made by hand");
    take_command_documents(&sent);
    let report = preflight(&db, "preflight_unique_email", &Options::default()).await;

    assert_eq!(unique_findings(&report), 0, "{report:#?}");
    assert!(
        !report
            .inconclusive
            .iter()
            .any(|i| i.code == Code::UniqueDuplicates),
        "{report:#?}"
    );
    assert_eq!(
        aggregates_on(&take_command_documents(&sent), &db),
        0,
        "the existing unique index keeps the keys unique: nothing to count"
    );
}

#[tokio::test]
async fn a_partial_filter_is_honoured() {
    let (_alone, db) = fresh_with(
        "pidx_partial",
        "users",
        vec![
            doc! { "_id": 1, "email": "a@example.com", "active": true },
            doc! { "_id": 2, "email": "a@example.com", "active": false },
            doc! { "_id": 3, "email": "b@example.com", "active": true },
            doc! { "_id": 4, "email": "b@example.com", "active": true },
            doc! { "_id": 5, "active": false },
            doc! { "_id": 6 },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_partial", &Options::default()).await;

    let finding = only(&report, Code::UniqueDuplicates);
    // Only 3 and 4 are in the index; 1 and 2, 5 and 6 share keys outside it.
    assert_eq!(finding.count, 2, "{finding:#?}");
    assert_eq!(finding.index.as_deref(), Some("email_1"));
}

#[tokio::test]
async fn a_sparse_index_leaves_out_the_documents_without_its_field() {
    let (_alone, db) = fresh_with(
        "pidx_sparse",
        "users",
        vec![
            doc! { "_id": 1, "email": "a@example.com" },
            doc! { "_id": 2, "email": "a@example.com" },
            doc! { "_id": 3 },
            doc! { "_id": 4 },
            doc! { "_id": 5, "email": "b@example.com" },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_sparse", &Options::default()).await;

    let finding = only(&report, Code::UniqueDuplicates);
    // 3 and 4 lack the field: not in the index, so no duplicates.
    assert_eq!(finding.count, 2, "{finding:#?}");
}

#[tokio::test]
async fn a_key_the_probe_cannot_read_as_the_index_does_is_inconclusive_not_clean() {
    let (_alone, db, sent) = monitored_with(
        "pidx_positional",
        "orders",
        vec![
            doc! { "_id": 1, "items": [{ "sku": "a" }] },
            doc! { "_id": 2, "items": [{ "sku": "a" }] },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_positional", &Options::default()).await;

    assert_eq!(unique_findings(&report), 0, "{report:#?}");
    let [inconclusive] = report.inconclusive.as_slice() else {
        panic!("one inconclusive probe expected: {report:#?}");
    };
    assert_eq!(inconclusive.code, Code::UniqueDuplicates);
    assert_eq!(inconclusive.index.as_deref(), Some("items.0.sku_1"));
    assert!(
        inconclusive.reason.contains("`items.0.sku`") && inconclusive.reason.contains("by hand"),
        "{}",
        inconclusive.reason
    );
    assert_eq!(aggregates_on(&take_command_documents(&sent), &db), 0);
}

#[tokio::test]
async fn shown_ids_are_the_duplicates_ids_and_never_a_key_value() {
    let secret = "s3cret-value@example.com";
    let (_alone, db) = fresh_with(
        "pidx_ids",
        "users",
        vec![
            doc! { "_id": "u1", "email": secret },
            doc! { "_id": "u2", "email": secret },
            doc! { "_id": "u3", "email": "other@example.com" },
        ],
    )
    .await;

    let options = Options::default().show_ids(true);
    let report = preflight(&db, "preflight_unique_email", &options).await;

    let finding = only(&report, Code::UniqueDuplicates);
    assert_eq!(finding.count, 2);
    let mut ids: Vec<String> = finding
        .ids
        .iter()
        .map(|id| id.as_str().expect("string ids").to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["u1", "u2"]);
    let json = serde_json::to_string(&report).expect("the report serializes");
    for shown in [json, format!("{report:?}"), finding.message.clone()] {
        assert!(!shown.contains("s3cret"), "a key value shown: {shown}");
    }
}

#[tokio::test]
async fn a_count_stopped_by_max_time_is_inconclusive_not_clean() {
    let (_alone, db) = fresh_with(
        "pidx_max_time",
        "users",
        vec![
            doc! { "_id": 1, "email": "a@example.com" },
            doc! { "_id": 2, "email": "a@example.com" },
        ],
    )
    .await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let live = db.name().to_owned();
    let stopped = proxy.add(Rule::new(
        Match::command("aggregate")
            .on("users")
            .when(move |body| body.get_str("$db") == Ok(live.as_str())),
        Fault::error(50, "MaxTimeMSExpired", "operation exceeded time limit"),
    ));

    let options = Options::default().max_time(Duration::from_secs(2));
    let through = proxy.database(&db).await;
    let report = preflight_through(&db, &through, "preflight_unique_email", &options).await;

    assert_eq!(stopped.hits(), 1, "the count was sent once and stopped");
    let counts: Vec<Document> = proxy
        .seen()
        .into_iter()
        .map(|seen| seen.body)
        .filter(|body| stopped_matches(body, db.name()))
        .collect();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!(
        counts[0].get("maxTimeMS").is_some(),
        "the count carries maxTimeMS"
    );
    assert_eq!(unique_findings(&report), 0, "not clean, not found: {report:#?}");
    let [inconclusive] = report.inconclusive.as_slice() else {
        panic!("one inconclusive probe expected: {report:#?}");
    };
    assert_eq!(inconclusive.code, Code::UniqueDuplicates);
    assert_eq!(inconclusive.collection, "users");
    assert_eq!(inconclusive.index.as_deref(), Some("email_1"));
    assert!(
        inconclusive.reason.contains("--max-time"),
        "the reason says what to do: {}",
        inconclusive.reason
    );
}

fn stopped_matches(body: &Document, live: &str) -> bool {
    body.keys().next().map(String::as_str) == Some("aggregate")
        && body.get_str("aggregate") == Ok("users")
        && body.get_str("$db") == Ok(live)
}

#[tokio::test]
async fn indexes_already_there_with_the_declared_keys_and_other_options_conflict() {
    let (_alone, db) = fresh_with(
        "pidx_conflicts",
        "users",
        vec![doc! { "_id": 1, "email": "a@example.com", "login": "a" }],
    )
    .await;
    // The declared unique keys, unique, under another name: the same
    // signature, which the server refuses to build twice. The declared
    // plain keys as a unique index: another signature, which it builds
    // beside. The declared TTL's keys with another expireAfterSeconds
    // (whatever their name: the TTL is no part of the signature).
    db.collection::<Document>("users")
        .create_index(ascending("login").unique().named("by_login"))
        .await
        .expect("a unique index on the declared unique keys");
    db.collection::<Document>("users")
        .create_index(ascending("email").unique().named("email_unique"))
        .await
        .expect("a unique index on the declared plain keys");
    db.collection::<Document>("sessions")
        .create_index(ttl("expires_at", Duration::from_secs(3600)))
        .await
        .expect("a TTL index");

    let report = preflight(&db, "preflight_conflicts", &Options::default()).await;

    let login = conflict(&report, "login_1");
    assert_eq!(
        (login.migration.as_str(), login.collection.as_str()),
        ("pi_0002_unique_login", "users")
    );
    assert!(
        login
            .message
            .contains("the same keys and signature under the name"),
        "{}",
        login.message
    );
    let sessions = conflict(&report, "expires_at_1");
    assert_eq!(
        (sessions.migration.as_str(), sessions.collection.as_str()),
        ("pi_0003_sessions_ttl", "sessions")
    );
    assert!(
        sessions
            .message
            .contains("expireAfterSeconds: declared 60, existing 3600"),
        "{}",
        sessions.message
    );
    let conflicts = report
        .findings
        .iter()
        .filter(|f| f.code == Code::IndexConflict)
        .count();
    assert_eq!(conflicts, 2, "{report:#?}");
    assert_eq!(
        unique_findings(&report),
        0,
        "one login, no duplicate: {report:#?}"
    );
    assert!(report.fails());
}

#[tokio::test]
async fn an_index_already_there_under_the_declared_name_on_other_keys_conflicts() {
    let (_alone, db) = fresh_with(
        "pidx_conflict_name",
        "users",
        vec![doc! { "_id": 1, "email": "a@example.com" }],
    )
    .await;
    // The emulator names the indexes it builds itself: the live listing is
    // answered as MongoDB lists an index made as `email_1` on `nickname`.
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let listed = proxy.add(Rule::list_indexes(
        db.name(),
        "users",
        vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "nickname": 1 }, "name": "email_1" },
        ],
    ));

    let through = proxy.database(&db).await;
    let report = preflight_through(&db, &through, "preflight_conflicts", &Options::default()).await;

    assert!(listed.hits() >= 1, "the live listing was answered");
    let email = conflict(&report, "email_1");
    assert_eq!(
        (email.migration.as_str(), email.collection.as_str()),
        ("pi_0001_plain_email", "users")
    );
    assert!(
        email
            .message
            .contains(r#"keys: declared { "email": 1 }, existing { "nickname": 1 }"#),
        "{}",
        email.message
    );
}

/// The one `index_conflict` finding about the index `name`, checked for
/// what every such finding says.
fn conflict<'r>(report: &'r PreflightReport, name: &str) -> &'r Finding {
    let found: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.code == Code::IndexConflict && f.index.as_deref() == Some(name))
        .collect();
    let [finding] = found.as_slice() else {
        panic!("one conflict about `{name}` expected: {report:#?}");
    };
    assert_eq!(finding.severity, Severity::Fails);
    assert_eq!(finding.count, 0);
    assert!(
        finding.message.contains("the migration fails")
            && finding.message.contains("drop the existing index"),
        "{}",
        finding.message
    );
    finding
}

#[tokio::test]
async fn documents_with_several_keys_are_counted_once_each() {
    let (_alone, db) = fresh_with(
        "pidx_multikey_mixed",
        "posts",
        vec![
            doc! { "_id": 1, "tags": ["x", "y"] },
            doc! { "_id": 2, "tags": ["y", "x"] },
            doc! { "_id": 3, "tags": ["z", "z"] },
            doc! { "_id": 4, "tags": "w" },
            doc! { "_id": 5, "tags": ["w", "v"] },
            doc! { "_id": 6 },
            doc! { "_id": 7, "tags": Bson::Null },
            doc! { "_id": 8, "tags": [] },
            doc! { "_id": 9, "tags": [] },
            doc! { "_id": 10, "tags": "u" },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_tags", &Options::default()).await;

    let finding = only(&report, Code::UniqueDuplicates);
    // 1 and 2 share x and y, 4 and 5 share w, 6 and 7 are null, 8 and 9
    // are empty arrays (not null); 3 repeats its own z, 10 is alone.
    assert_eq!(finding.count, 8, "{finding:#?}");
    assert!(finding.message.contains("share 5 keys"), "{}", finding.message);
}

#[tokio::test]
async fn compound_keys_count_missing_fields_as_null_on_a_real_server() {
    let _alone = DATABASE_LISTINGS.lock().await;
    let db = fresh_database("pidx_real_compound").await;
    if skip_unless_real(
        &db,
        "the emulator groups every compound key into one group, so compound duplicates are \
         counted on a real server",
    )
    .await
    {
        return;
    }
    insert_everywhere(
        &db,
        "pairs",
        vec![
            doc! { "_id": 1, "a": 1, "b": 1 },
            doc! { "_id": 2, "a": 1, "b": 1 },
            doc! { "_id": 3, "a": 1 },
            doc! { "_id": 4, "a": 1, "b": Bson::Null },
            doc! { "_id": 5 },
            doc! { "_id": 6, "b": Bson::Null },
            doc! { "_id": 7, "a": 2, "b": 1 },
            doc! { "_id": 8, "a": 1, "b": 2 },
            doc! { "_id": 9, "a": [3, 4], "b": 5 },
            doc! { "_id": 10, "a": [4, 3], "b": 5 },
        ],
    )
    .await;

    let options = Options::default().show_ids(true);
    let report = preflight(&db, "preflight_unique_compound", &options).await;

    let finding = only(&report, Code::UniqueDuplicates);
    // (1, 1): 1 and 2; (1, null): 3 and 4; (null, null): 5 and 6; 9 and 10
    // share two keys and count once each.
    assert_eq!(finding.count, 8, "{finding:#?}");
    assert!(finding.message.contains("share 5 keys"), "{}", finding.message);
    assert!(!finding.ids.is_empty() && finding.ids.len() <= 5);
    for id in &finding.ids {
        let id = id.as_i32().expect("integer ids");
        assert!(![7, 8].contains(&id), "{id} shares no key");
    }
}

#[tokio::test]
async fn under_a_case_insensitive_collation_names_differing_in_case_are_duplicates_on_a_real_server() {
    let _alone = DATABASE_LISTINGS.lock().await;
    let db = fresh_database("pidx_real_collation").await;
    if skip_unless_real(
        &db,
        "the emulator keeps no collation, so keys equal under one are counted on a real server",
    )
    .await
    {
        return;
    }
    insert_everywhere(
        &db,
        "people",
        vec![
            doc! { "_id": 1, "name": "Ada" },
            doc! { "_id": 2, "name": "ada" },
            doc! { "_id": 3, "name": "ADA" },
            doc! { "_id": 4, "name": "Grace" },
            doc! { "_id": 5, "name": ["Alan", "alan"] },
        ],
    )
    .await;

    let report = preflight(&db, "preflight_unique_collation", &Options::default()).await;

    let finding = only(&report, Code::UniqueDuplicates);
    // "Alan" and "alan" are one key of one document.
    assert_eq!(finding.count, 3, "{finding:#?}");
    assert_eq!(finding.index.as_deref(), Some("name_1"));
}
