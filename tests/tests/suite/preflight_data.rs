//! Preflight's probes of the documents already there: `validator_rejects`
//! (the documents a new validator refuses, and how much that hurts under
//! its level and action), `ttl_deletes` (what a new or shorter TTL deletes
//! as soon as it is built) and `ttl_not_dates` (what it never deletes).
//!
//! Each test inserts documents into a fresh database (`fresh_with`, which
//! holds the listing of databases for the test), runs preflight for a
//! group of migrations declared here, asserts the findings of these codes
//! (other probes may say more about the same declarations), and that the
//! live database is as it was: the same collections, options, indexes and
//! documents, no record, no lock, and no scratch database left.
//!
//! The emulator mis-evaluates `$type: "date"` under `$nor` and has no
//! `$not`, and keeps no validators: `ttl_not_dates` is tested here through
//! a reply the proxy injects, and against a real server at the end of
//! this file (`skip_unless_real`), with `$jsonSchema` types and a
//! validator already in place.

use std::time::Duration;

use schema_core::indexes::{IndexModelExt, drop_index, ensure_indexes, ttl};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, DateTime, Document, doc};
use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
use schema_core::preflight::{Code, Finding, Inconclusive, Options, PreflightReport, Severity};
use schema_core::{Error, Migrations, SchemaManager, Validator, migration, set_validator};
use schema_tests::live::{Live, fresh_with, insert_everywhere as insert, settle};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::server::skip_unless_real;

const DAY: Duration = Duration::from_secs(86_400);

fn named() -> Document {
    doc! { "required": ["name"] }
}

#[migration(id = "pd_v_strict", group = "pdata_strict")]
async fn validator_strict(db: &Database) -> Result<(), Error> {
    set_validator(db, "people", Validator::new(named())).await
}

#[migration(id = "pd_v_moderate", group = "pdata_moderate")]
async fn validator_moderate(db: &Database) -> Result<(), Error> {
    let validator = Validator::new(named()).level(ValidationLevel::Moderate);
    set_validator(db, "people", validator).await
}

#[migration(id = "pd_v_warn", group = "pdata_warn")]
async fn validator_warn(db: &Database) -> Result<(), Error> {
    let validator = Validator::new(named()).action(ValidationAction::Warn);
    set_validator(db, "people", validator).await
}

#[migration(id = "pd_v_off", group = "pdata_off")]
async fn validator_off(db: &Database) -> Result<(), Error> {
    let validator = Validator::new(named()).level(ValidationLevel::Off);
    set_validator(db, "people", validator).await
}

#[migration(id = "pd_v_types", group = "pdata_types")]
async fn validator_types(db: &Database) -> Result<(), Error> {
    let schema = doc! {
        "bsonType": "object",
        "required": ["name", "qty"],
        "properties": {
            "name": { "bsonType": "string" },
            "qty": { "bsonType": "int", "minimum": 0 },
        },
    };
    set_validator(db, "people", Validator::new(schema)).await
}

#[migration(id = "pd_t_new", group = "pdata_ttl_new")]
async fn ttl_new(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "sessions", [ttl("at", DAY)]).await
}

#[migration(id = "pd_t_partial", group = "pdata_ttl_partial")]
async fn ttl_partial(db: &Database) -> Result<(), Error> {
    let temporary = ttl("at", DAY)
        .partial(doc! { "kind": "temporary" })
        .named("temporary_at");
    ensure_indexes(db, "sessions", [temporary]).await
}

/// The TTL of `sessions` as tests set it before preflight: thirty days.
const EXISTING_TTL: Duration = Duration::from_secs(30 * 86_400);

#[migration(id = "pd_t_shorter", group = "pdata_ttl_shorter")]
async fn ttl_shorter(db: &Database) -> Result<(), Error> {
    drop_index(db, "sessions", doc! { "at": 1 }).await?;
    ensure_indexes(db, "sessions", [ttl("at", 7 * DAY)]).await
}

/// The shorter TTL declared over the longer one without dropping it:
/// `createIndexes` refuses it.
#[migration(id = "pd_t_shorter_in_place", group = "pdata_ttl_shorter_in_place")]
async fn ttl_shorter_in_place(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "sessions", [ttl("at", 7 * DAY)]).await
}

#[migration(id = "pd_t_same", group = "pdata_ttl_same")]
async fn ttl_same(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "sessions", [ttl("at", EXISTING_TTL)]).await
}

#[migration(id = "pd_t_longer", group = "pdata_ttl_longer")]
async fn ttl_longer(db: &Database) -> Result<(), Error> {
    drop_index(db, "sessions", doc! { "at": 1 }).await?;
    ensure_indexes(db, "sessions", [ttl("at", 60 * DAY)]).await
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid set"))
}

async fn preflight(db: &Database, group: &str, options: &Options) -> PreflightReport {
    manager(db, group)
        .preflight_with(options)
        .await
        .expect("preflight")
}

fn findings(report: &PreflightReport, code: Code) -> Vec<&Finding> {
    report
        .findings
        .iter()
        .filter(|finding| finding.code == code)
        .collect()
}

fn inconclusive(report: &PreflightReport, code: Code) -> Vec<&Inconclusive> {
    report
        .inconclusive
        .iter()
        .filter(|probe| probe.code == code)
        .collect()
}

/// The one finding of `code`, asserting there is one.
fn only(report: &PreflightReport, code: Code) -> Finding {
    let found = findings(report, code);
    assert_eq!(found.len(), 1, "one {code} finding expected: {report:#?}");
    assert!(
        inconclusive(report, code).is_empty(),
        "no inconclusive {code}: {report:#?}"
    );
    found[0].clone()
}

/// No finding and no inconclusive probe of `code`.
fn none(report: &PreflightReport, code: Code) {
    assert!(
        findings(report, code).is_empty(),
        "no {code} finding expected: {report:#?}"
    );
    assert!(
        inconclusive(report, code).is_empty(),
        "no inconclusive {code} expected: {report:#?}"
    );
}

/// `ids`, as integers, sorted.
fn sorted(ids: &[Bson]) -> Vec<i64> {
    let mut ids: Vec<i64> = ids
        .iter()
        .map(|id| match id {
            Bson::Int32(id) => i64::from(*id),
            Bson::Int64(id) => *id,
            other => panic!("an integer `_id` expected, got {other:?}"),
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// `now` moved by `days` (back when negative).
fn days_from(now: DateTime, days: i64) -> DateTime {
    DateTime::from_millis(now.timestamp_millis() + days * 86_400_000)
}

/// Builds the TTL index `sessions` has before preflight, on every member.
async fn existing_ttl(db: &Database) {
    db.run_command(doc! {
        "createIndexes": "sessions",
        "indexes": [{
            "key": { "at": 1 },
            "name": "at_1",
            "expireAfterSeconds": i64::try_from(EXISTING_TTL.as_secs()).expect("thirty days"),
        }],
    })
    .await
    .expect("the existing TTL index");
    settle(db).await;
}

/// Eight people: three without a name (`_id` 2, 3, 4, the last with a
/// note that must appear in no report), one whose name is null (present,
/// so it passes `required`).
fn people() -> Vec<Document> {
    vec![
        doc! { "_id": 1, "name": "Ada", "qty": 3 },
        doc! { "_id": 2, "qty": 1 },
        doc! { "_id": 3 },
        doc! { "_id": 4, "note": "private-note-4" },
        doc! { "_id": 5, "name": Bson::Null },
        doc! { "_id": 6, "name": "Grace" },
        doc! { "_id": 7, "name": "Edsger", "qty": -1 },
        doc! { "_id": 8, "name": "Barbara" },
    ]
}

#[tokio::test]
async fn documents_a_strict_validator_refuses_are_counted_and_hurt() {
    let (_alone, db) = fresh_with("pd_vs", "people", people()).await;
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_strict", &Options::default()).await;

    assert_eq!(report.pending, ["pd_v_strict"]);
    let finding = only(&report, Code::ValidatorRejects);
    assert_eq!(finding.migration, "pd_v_strict");
    assert_eq!(finding.severity, Severity::Hurts);
    assert_eq!(finding.collection, "people");
    assert_eq!(finding.index, None);
    assert_eq!(finding.count, 3, "{finding:?}");
    assert!(finding.ids.is_empty(), "no ids unless asked: {finding:?}");
    let message = &finding.message;
    assert!(
        message.contains("rejects 3 of the existing documents of `people`"),
        "{message}"
    );
    assert!(
        message.contains("every later update of one is refused"),
        "{message}"
    );
    assert!(
        message.contains("fix them first") && message.contains("moderate"),
        "the message says what to do: {message}"
    );
    assert!(
        !report.fails(),
        "a validator that rejects documents does not fail the migration"
    );
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn under_the_level_moderate_or_the_action_warn_a_rejection_is_info_and_under_off_nothing() {
    let (_alone, db) = fresh_with("pd_vm", "people", people()).await;
    let before = Live::read(&db).await;

    let moderate = only(
        &preflight(&db, "pdata_moderate", &Options::default()).await,
        Code::ValidatorRejects,
    );
    assert_eq!((moderate.severity, moderate.count), (Severity::Info, 3));
    assert!(
        moderate.message.contains("under the level moderate")
            && moderate.message.contains("none is refused yet"),
        "{}",
        moderate.message
    );

    let warn = only(
        &preflight(&db, "pdata_warn", &Options::default()).await,
        Code::ValidatorRejects,
    );
    assert_eq!((warn.severity, warn.count), (Severity::Info, 3));
    assert!(
        warn.message.contains("under the action warn nothing is refused"),
        "{}",
        warn.message
    );

    let off = preflight(&db, "pdata_off", &Options::default()).await;
    assert_eq!(off.pending, ["pd_v_off"]);
    none(&off, Code::ValidatorRejects);
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn a_validator_every_document_passes_has_no_finding() {
    let (_alone, db) = fresh_with(
        "pd_vp",
        "people",
        vec![
            doc! { "_id": 1, "name": "Ada" },
            doc! { "_id": 2, "name": Bson::Null },
        ],
    )
    .await;
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_strict", &Options::default()).await;

    assert_eq!(report.pending, ["pd_v_strict"]);
    none(&report, Code::ValidatorRejects);
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn show_ids_lists_a_few_refused_documents_by_id_and_no_report_holds_a_value() {
    let mut inserted = people();
    inserted.extend((10..16).map(|id| doc! { "_id": id, "note": format!("private-note-{id}") }));
    let (_alone, db) = fresh_with("pd_vi", "people", inserted).await;
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_strict", &Options::default().show_ids(true)).await;

    let finding = only(&report, Code::ValidatorRejects);
    assert_eq!(finding.count, 9);
    let ids = sorted(&finding.ids);
    assert_eq!(ids.len(), 5, "a few ids, not all nine: {ids:?}");
    let refused = [2, 3, 4, 10, 11, 12, 13, 14, 15];
    assert!(ids.iter().all(|id| refused.contains(id)), "{ids:?}");
    let json = serde_json::to_string(&report).expect("the report serializes");
    assert!(!json.contains("private-note"), "{json}");
    assert!(!finding.message.contains("private-note"), "{}", finding.message);
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn a_new_ttl_index_counts_the_documents_older_than_its_ttl_within_its_partial_filter() {
    let now = DateTime::now();
    let (_alone, db) = fresh_with(
        "pd_tn",
        "sessions",
        vec![
            doc! { "_id": 1, "at": days_from(now, -10), "kind": "temporary" },
            doc! { "_id": 2, "at": days_from(now, -3), "kind": "kept" },
            doc! { "_id": 3, "at": days_from(now, -2), "kind": "temporary" },
            doc! { "_id": 4, "at": now, "kind": "temporary" },
            doc! { "_id": 5, "at": days_from(now, 1) },
            doc! { "_id": 6, "at": "2001-01-01" },
            doc! { "_id": 7 },
        ],
    )
    .await;
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_ttl_new", &Options::default()).await;

    assert_eq!(report.pending, ["pd_t_new"]);
    let finding = only(&report, Code::TtlDeletes);
    assert_eq!(finding.migration, "pd_t_new");
    assert_eq!(finding.severity, Severity::Hurts);
    assert_eq!(finding.collection, "sessions");
    assert_eq!(finding.index.as_deref(), Some("at_1"));
    assert_eq!(
        finding.count, 3,
        "the three dates more than a day old: {finding:?}"
    );
    let message = &finding.message;
    assert!(
        message.contains("the TTL index `at_1` deletes 3 of the existing documents of `sessions`"),
        "{message}"
    );
    assert!(message.contains("as soon as it is built"), "{message}");
    assert!(message.contains("more than 86400 s old"), "{message}");
    assert!(
        message.contains("back them up, or lengthen the TTL, first"),
        "the message says what to do: {message}"
    );

    // Only the documents of its partial filter expire.
    let partial = preflight(&db, "pdata_ttl_partial", &Options::default()).await;
    let finding = only(&partial, Code::TtlDeletes);
    assert_eq!(finding.index.as_deref(), Some("temporary_at"));
    assert_eq!(finding.count, 2, "{finding:?}");
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn show_ids_lists_the_documents_a_new_ttl_deletes() {
    let now = DateTime::now();
    let (_alone, db) = fresh_with(
        "pd_ti",
        "sessions",
        vec![
            doc! { "_id": 1, "at": days_from(now, -30) },
            doc! { "_id": 2, "at": days_from(now, -5) },
            doc! { "_id": 3, "at": days_from(now, -2) },
            doc! { "_id": 4, "at": now },
            doc! { "_id": 5, "at": days_from(now, 2) },
            doc! { "_id": 6 },
        ],
    )
    .await;
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_ttl_new", &Options::default().show_ids(true)).await;

    let finding = only(&report, Code::TtlDeletes);
    assert_eq!(finding.count, 3);
    assert_eq!(sorted(&finding.ids), [1, 2, 3]);
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn a_shorter_ttl_than_the_existing_one_counts_what_it_deletes_and_a_longer_or_same_one_nothing() {
    let now = DateTime::now();
    let (_alone, db) = fresh_with(
        "pd_ts",
        "sessions",
        vec![
            doc! { "_id": 1, "at": days_from(now, -20) },
            doc! { "_id": 2, "at": days_from(now, -10) },
            doc! { "_id": 3, "at": days_from(now, -1) },
            doc! { "_id": 4, "at": now },
            doc! { "_id": 5, "at": "yesterday" },
        ],
    )
    .await;
    existing_ttl(&db).await;
    let before = Live::read(&db).await;

    let shorter = preflight(&db, "pdata_ttl_shorter", &Options::default()).await;
    let finding = only(&shorter, Code::TtlDeletes);
    assert_eq!(finding.severity, Severity::Hurts);
    assert_eq!(finding.count, 2, "the two more than seven days old: {finding:?}");
    assert!(
        finding
            .message
            .contains("shortening the TTL of `at` from 2592000 s to 604800 s deletes 2"),
        "{}",
        finding.message
    );
    // What is not a date already never expires under the existing index.
    none(&shorter, Code::TtlNotDates);
    // The index is dropped before it is declared again: no conflict.
    none(&shorter, Code::IndexConflict);

    for group in ["pdata_ttl_same", "pdata_ttl_longer"] {
        let report = preflight(&db, group, &Options::default()).await;
        none(&report, Code::TtlDeletes);
        none(&report, Code::TtlNotDates);
    }
    // Declared over the longer one without dropping it, the shorter TTL is
    // refused: the migration fails and deletes nothing.
    let in_place = preflight(&db, "pdata_ttl_shorter_in_place", &Options::default()).await;
    none(&in_place, Code::TtlDeletes);
    let refused = only(&in_place, Code::IndexConflict);
    assert_eq!(refused.migration, "pd_t_shorter_in_place");
    before.assert_unchanged(&db).await;
}

/// The first stage's `$match` of an `aggregate` command, when it has one.
fn first_match(body: &Document) -> Option<&Document> {
    body.get_array("pipeline")
        .ok()?
        .first()?
        .as_document()?
        .get_document("$match")
        .ok()
}

/// The counts preflight sends to `db` about `collection`, whose filter
/// `filter` accepts.
fn count_on(db: &Database, collection: &str, filter: fn(&Document) -> bool) -> Match {
    let live = db.name().to_owned();
    Match::command("aggregate")
        .on(collection)
        .when(move |body| body.get_str("$db") == Ok(live.as_str()) && first_match(body).is_some_and(filter))
}

fn asks_for_dates(filter: &Document) -> bool {
    filter.to_string().contains("$type")
}

fn before_a_cutoff(filter: &Document) -> bool {
    filter.to_string().contains("$lt")
}

fn any_filter(_: &Document) -> bool {
    true
}

#[tokio::test]
async fn documents_whose_ttl_field_is_not_a_date_are_counted_as_never_expiring_from_the_server_s_count() {
    let (_alone, db) = fresh_with(
        "pd_tnd",
        "sessions",
        vec![doc! { "_id": 1, "at": "2001-01-01" }, doc! { "_id": 2, "at": 7 }],
    )
    .await;
    let before = Live::read(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The emulator cannot run `$not`: the server's count is answered as a
    // real one would, three documents.
    let ns = format!("{}.sessions", db.name());
    let answered = proxy.add(Rule::new(
        count_on(&db, "sessions", asks_for_dates),
        Fault::Reply(doc! {
            "cursor": { "firstBatch": [{ "_id": 1, "n": 3 }], "id": 0_i64, "ns": ns },
            "ok": 1.0,
        }),
    ));

    let report = preflight(&proxy.database(&db).await, "pdata_ttl_new", &Options::default()).await;

    assert_eq!(
        answered.hits(),
        1,
        "preflight counted the documents without a date once"
    );
    let sent = proxy.exchanges(&count_on(&db, "sessions", asks_for_dates));
    let filter = first_match(&sent[0].0.body).expect("a $match").clone();
    assert_eq!(
        filter,
        doc! { "at": { "$exists": true, "$not": { "$type": "date" } } },
        "the documents that have the field and no date in it"
    );
    let finding = only(&report, Code::TtlNotDates);
    assert_eq!(finding.severity, Severity::Info);
    assert_eq!(finding.collection, "sessions");
    assert_eq!(finding.index.as_deref(), Some("at_1"));
    assert_eq!(finding.count, 3);
    let message = &finding.message;
    assert!(
        message.contains("`at` is not a date in 3 of the existing documents of `sessions`"),
        "{message}"
    );
    assert!(message.contains("never deletes them"), "{message}");
    assert!(
        message.contains("store dates there"),
        "the message says what to do: {message}"
    );
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn a_count_the_server_refuses_or_stops_at_its_time_limit_is_inconclusive_with_the_reason() {
    let (_alone, db) = fresh_with("pd_inc", "people", people()).await;
    insert(
        &db,
        "sessions",
        vec![doc! { "_id": 1, "at": DateTime::from_millis(0) }],
    )
    .await;
    let before = Live::read(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let refused = proxy.add(Rule::new(
        count_on(&db, "people", any_filter),
        Fault::error(
            241,
            "ConversionFailure",
            "Failed to parse number \"private-value\" in $convert with no onError value",
        ),
    ));
    let stopped = proxy.add(Rule::new(
        count_on(&db, "sessions", before_a_cutoff),
        Fault::error(50, "MaxTimeMSExpired", "operation exceeded time limit"),
    ));
    let through = proxy.database(&db).await;

    let validator = preflight(&through, "pdata_strict", &Options::default()).await;
    let ttl = preflight(&through, "pdata_ttl_new", &Options::default()).await;

    assert_eq!(refused.hits(), 1, "the server refused the validator's count");
    assert_eq!(stopped.hits(), 1, "the TTL's count ran out of time");
    assert!(
        findings(&validator, Code::ValidatorRejects).is_empty(),
        "{validator:#?}"
    );
    let [refusal] = inconclusive(&validator, Code::ValidatorRejects)[..] else {
        panic!("one inconclusive validator_rejects expected: {validator:#?}");
    };
    assert_eq!(
        (refusal.migration.as_str(), refusal.collection.as_str()),
        ("pd_v_strict", "people")
    );
    assert!(
        refusal.reason.contains("241") && refusal.reason.contains("ConversionFailure"),
        "{}",
        refusal.reason
    );
    assert!(!refusal.reason.contains("private-value"), "{}", refusal.reason);

    assert!(findings(&ttl, Code::TtlDeletes).is_empty(), "{ttl:#?}");
    let [timeout] = inconclusive(&ttl, Code::TtlDeletes)[..] else {
        panic!("one inconclusive ttl_deletes expected: {ttl:#?}");
    };
    assert_eq!(timeout.index.as_deref(), Some("at_1"));
    assert!(
        timeout.reason.contains("ran longer than its 30 s") && timeout.reason.contains("--max-time"),
        "{}",
        timeout.reason
    );
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn a_validator_already_in_place_is_not_probed_unless_it_now_refuses_more() {
    let (_alone, db) = fresh_with("pd_vin", "people", people()).await;
    let before = Live::read(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let through = proxy.database(&db).await;
    // The emulator keeps no validator: `listCollections` is answered as a
    // real server with this one in place would answer it.
    let listed = |level: &str| {
        let live = db.name().to_owned();
        let reply = doc! {
            "cursor": {
                "firstBatch": [{
                    "name": "people",
                    "type": "collection",
                    "options": {
                        "validator": { "$jsonSchema": named() },
                        "validationLevel": level,
                        "validationAction": "error",
                    },
                    "info": { "readOnly": false },
                }],
                "id": 0_i64,
                "ns": format!("{live}.$cmd.listCollections"),
            },
            "ok": 1.0,
        };
        let matcher = Match::command("listCollections")
            .when(move |body| body.get_str("$db") == Ok(live.as_str()) && body.contains_key("filter"));
        Rule::new(matcher, Fault::Reply(reply))
    };

    let strict = proxy.add(listed("strict"));
    let report = preflight(&through, "pdata_strict", &Options::default()).await;
    assert_eq!(strict.hits(), 1, "preflight listed the collection once");
    none(&report, Code::ValidatorRejects);
    assert_eq!(
        proxy.count(&count_on(&db, "people", any_filter)),
        0,
        "nothing was counted"
    );
    strict.remove();

    let moderate = proxy.add(listed("moderate"));
    let report = preflight(&through, "pdata_strict", &Options::default()).await;
    assert_eq!(moderate.hits(), 1, "preflight listed the collection once");
    let finding = only(&report, Code::ValidatorRejects);
    assert_eq!((finding.severity, finding.count), (Severity::Hurts, 3));
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn real_server_a_json_schema_s_required_fields_and_types_are_counted() {
    let (_alone, db) = fresh_with(
        "pd_rjs",
        "people",
        vec![
            doc! { "_id": 1, "name": "Ada", "qty": 1 },
            doc! { "_id": 2, "name": "Grace", "qty": 1.5 },
            doc! { "_id": 3, "name": "Edsger" },
            doc! { "_id": 4, "qty": 2 },
            doc! { "_id": 5, "name": 7, "qty": 3 },
            doc! { "_id": 6, "name": "Barbara", "qty": -1 },
            doc! { "_id": 7, "name": "Alan", "qty": 4_i64 },
            doc! { "_id": 8, "name": "Donald", "qty": 0 },
        ],
    )
    .await;
    if skip_unless_real(
        &db,
        "`$jsonSchema` types are evaluated as MongoDB does only by a real server",
    )
    .await
    {
        return;
    }
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_types", &Options::default().show_ids(true)).await;

    let finding = only(&report, Code::ValidatorRejects);
    assert_eq!(
        (finding.severity, finding.count),
        (Severity::Hurts, 6),
        "{finding:?}"
    );
    let ids = sorted(&finding.ids);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(ids.iter().all(|id| (2..=7).contains(id)), "{ids:?}");
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn real_server_ttl_fields_that_are_not_dates_never_expire_and_arrays_expire_by_their_earliest_date() {
    let now = DateTime::now();
    let old = days_from(now, -10);
    let (_alone, db) = fresh_with(
        "pd_rnd",
        "sessions",
        vec![
            doc! { "_id": 1, "at": old },
            doc! { "_id": 2, "at": "2020-01-01" },
            doc! { "_id": 3, "at": 42 },
            doc! { "_id": 4, "at": Bson::Null },
            doc! { "_id": 5, "at": [now, old] },
            doc! { "_id": 6, "at": [now] },
            doc! { "_id": 7, "at": [] },
            doc! { "_id": 8, "at": [1, "x"] },
            doc! { "_id": 9 },
            doc! { "_id": 10, "at": now },
            doc! { "_id": 11, "at": old.timestamp_millis() },
        ],
    )
    .await;
    if skip_unless_real(
        &db,
        "the emulator mis-evaluates `$type: \"date\"` and has no `$not`",
    )
    .await
    {
        return;
    }
    let before = Live::read(&db).await;

    let report = preflight(&db, "pdata_ttl_new", &Options::default().show_ids(true)).await;

    let deletes = only(&report, Code::TtlDeletes);
    assert_eq!(deletes.count, 2, "{deletes:?}");
    assert_eq!(sorted(&deletes.ids), [1, 5]);
    let not_dates = only(&report, Code::TtlNotDates);
    assert_eq!(
        (not_dates.severity, not_dates.count),
        (Severity::Info, 6),
        "{not_dates:?}"
    );
    let ids = sorted(&not_dates.ids);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(ids.iter().all(|id| [2, 3, 4, 7, 8, 11].contains(id)), "{ids:?}");
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn real_server_a_validator_already_in_place_has_no_finding_unless_it_now_refuses_more() {
    let (_alone, db) = fresh_with("pd_rin", "people", people()).await;
    if skip_unless_real(&db, "the emulator keeps no validator").await {
        return;
    }
    set_validator(&db, "people", Validator::new(named()))
        .await
        .expect("the validator in place");
    settle(&db).await;

    let report = preflight(&db, "pdata_strict", &Options::default()).await;
    none(&report, Code::ValidatorRejects);

    let moderate = Validator::new(named()).level(ValidationLevel::Moderate);
    set_validator(&db, "people", moderate)
        .await
        .expect("the validator, moderate");
    settle(&db).await;
    let before = Live::read(&db).await;
    let report = preflight(&db, "pdata_strict", &Options::default()).await;
    let finding = only(&report, Code::ValidatorRejects);
    assert_eq!((finding.severity, finding.count), (Severity::Hurts, 3));
    before.assert_unchanged(&db).await;
}
