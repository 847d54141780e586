//! Preflight's `index_in_use` and `collection_scan`: a dropped index that
//! queries used (`$indexStats`), and a backfill whose filter no index
//! serves (`explain`).
//!
//! The emulator has no `$indexStats` and answers `explain` in a shape of
//! its own, so the real server's replies are injected at the fault proxy:
//! the tests show the proxy answered, then that the live database is as
//! it was (`preflight_answered` asserts both), then what preflight found.
//! The same probes against the server's own answers: on the emulator they
//! are inconclusive, never clean; on a real server (the tests at the end,
//! which skip here) a used index and an unindexed filter are found.

use schema_core::data::Backfill;
use schema_core::indexes::drop_index;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, DateTime, Document, doc};
use schema_core::preflight::{Code, Finding, Inconclusive, Options, PreflightReport, Severity};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::live::{Live, insert_everywhere, settle};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::server::{ServerKind, kind, skip_unless_real};
use schema_tests::{DATABASE_LISTINGS, documents, fresh_database, index_documents};
use tokio::sync::MutexGuard;

/// Drops the index on `legacy` of `things`.
#[migration(id = "pu_0001_drop_legacy", group = "preflight_usage")]
async fn drop_legacy(db: &Database) -> Result<(), Error> {
    drop_index(db, "things", doc! { "legacy": 1 }).await
}

/// Drops the index on `legacy` of `things`, then visits every thing: in
/// one set, a probe of each kind of read.
#[migration(id = "pu_0011_drop_legacy", group = "preflight_usage_primary")]
async fn drop_legacy_again(db: &Database) -> Result<(), Error> {
    drop_index(db, "things", doc! { "legacy": 1 }).await
}

#[migration(
    id = "pu_0012_things_version",
    group = "preflight_usage_primary",
    after = "pu_0011_drop_legacy"
)]
async fn things_version(db: &Database) -> Result<(), Error> {
    Backfill::new(db, "things")
        .update(doc! { "$set": { "version": 2 } })
        .run()
        .await?;
    Ok(())
}

/// Moves the events of the old kind to the new one.
#[migration(id = "pu_0101_events_kind", group = "preflight_scan")]
async fn events_kind(db: &Database) -> Result<(), Error> {
    Backfill::new(db, "events")
        .filter(doc! { "kind": "old" })
        .update(doc! { "$set": { "kind": "new" } })
        .run()
        .await?;
    Ok(())
}

/// Gives every event a version.
#[migration(id = "pu_0201_events_version", group = "preflight_scan_all")]
async fn events_version(db: &Database) -> Result<(), Error> {
    Backfill::new(db, "events")
        .update(doc! { "$set": { "version": 2 } })
        .run()
        .await?;
    Ok(())
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid set"))
}

/// Preflight of `group` on `db`, with the default options.
async fn preflight(db: &Database, group: &str) -> PreflightReport {
    manager(db, group)
        .preflight_with(&Options::default())
        .await
        .expect("preflight answers")
}

/// `things` with two documents and an index on `legacy`, on every member
/// (the probes may read from a secondary); the name the server gave that
/// index.
async fn things_with_legacy_index(db: &Database) -> String {
    insert_everywhere(db, "things", vec![doc! { "legacy": 1 }, doc! { "legacy": 2 }]).await;
    db.run_command(doc! {
        "createIndexes": "things",
        "indexes": [{ "key": { "legacy": 1 }, "name": "legacy_1" }],
    })
    .await
    .expect("an index by hand");
    settle(db).await;
    index_named_for(db, "things", "legacy").await
}

/// The name of the index of `collection` on `field`.
async fn index_named_for(db: &Database, collection: &str, field: &str) -> String {
    index_documents(db, collection)
        .await
        .into_iter()
        .find(|index| index.get_document("key").is_ok_and(|key| key.contains_key(field)))
        .and_then(|index| index.get_str("name").ok().map(str::to_owned))
        .expect("the index is listed")
}

/// `events` with `count` documents, a third of them of the old kind, on
/// every member.
async fn events(db: &Database, count: i32) {
    let events: Vec<Document> = (0..count)
        .map(|n| doc! { "_id": n, "kind": if n % 3 == 0 { "old" } else { "current" } })
        .collect();
    insert_everywhere(db, "events", events).await;
}

/// What `$indexStats` answers through a `mongos`, or from a member
/// (`shards` empty), about the index `name` of `db.things`: the same
/// shape and field types as the server's.
fn index_stats_reply(db: &Database, name: &str, ops: &[(Option<&str>, i64)]) -> Document {
    let batch: Vec<Document> = ops
        .iter()
        .enumerate()
        .map(|(n, (shard, ops))| {
            let mut stats = doc! {
                "name": name,
                "key": { "legacy": 1 },
                "host": format!("db{n}.example:27017"),
                "accesses": {
                    "ops": *ops,
                    "since": DateTime::parse_rfc3339_str("2026-11-30T08:00:00Z").expect("a time"),
                },
                "spec": { "v": 2, "key": { "legacy": 1 }, "name": name },
            };
            if let Some(shard) = shard {
                stats.insert("shard", *shard);
            }
            stats
        })
        .collect();
    doc! {
        "cursor": { "firstBatch": batch, "id": 0_i64, "ns": format!("{}.things", db.name()) },
        "ok": 1.0,
    }
}

/// The `$indexStats` aggregations of `things` in `db`.
fn index_stats_of(db: &Database) -> Match {
    let name = db.name().to_owned();
    Match::command("aggregate").on("things").when(move |body| {
        body.get_str("$db") == Ok(name.as_str())
            && body
                .get_array("pipeline")
                .ok()
                .and_then(|pipeline| pipeline.first())
                .and_then(Bson::as_document)
                .is_some_and(|first| first.contains_key("$indexStats"))
    })
}

/// The `explain`s of a `find` on `events` in `db`.
fn explain_of_events(db: &Database) -> Match {
    let name = db.name().to_owned();
    Match::command("explain").when(move |body| {
        body.get_str("$db") == Ok(name.as_str())
            && body
                .get_document("explain")
                .is_ok_and(|explained| explained.get_str("find") == Ok("events"))
    })
}

/// An `explain` reply as MongoDB 6.0 gives it (the classic engine) for a
/// `find` on `db.events` whose winning plan is `winning`.
fn explain_reply(db: &Database, winning: Document) -> Document {
    doc! {
        "explainVersion": "1",
        "queryPlanner": {
            "namespace": format!("{}.events", db.name()),
            "indexFilterSet": false,
            "parsedQuery": { "kind": { "$eq": "old" } },
            "queryHash": "8A1F2C3D",
            "planCacheKey": "4B2E9A10",
            "maxIndexedOrSolutionsReached": false,
            "maxIndexedAndSolutionsReached": false,
            "maxScansToExplodeReached": false,
            "winningPlan": winning,
            "rejectedPlans": [],
        },
        "command": { "find": "events", "filter": { "kind": "old" }, "$db": db.name() },
        "serverInfo": { "host": "db1.example", "port": 27017, "version": "6.0.19" },
        "ok": 1.0,
    }
}

fn collscan() -> Document {
    doc! { "stage": "COLLSCAN", "filter": { "kind": { "$eq": "old" } }, "direction": "forward" }
}

/// The only finding of `report`, asserted to be the only thing it says.
fn only_finding(report: &PreflightReport) -> &Finding {
    assert!(report.inconclusive.is_empty(), "{report:#?}");
    let [finding] = report.findings.as_slice() else {
        panic!("one finding: {report:#?}");
    };
    finding
}

/// What `finding` says, but its message: the migration, the code, the
/// severity, the collection, the index and the count.
fn fields(finding: &Finding) -> (&str, Code, Severity, &str, Option<&str>, u64) {
    (
        finding.migration.as_str(),
        finding.code,
        finding.severity,
        finding.collection.as_str(),
        finding.index.as_deref(),
        finding.count,
    )
}

/// The only inconclusive probe of `report`, asserted to be the only thing
/// it says.
fn only_inconclusive(report: &PreflightReport) -> &Inconclusive {
    assert!(report.findings.is_empty(), "{report:#?}");
    let [inconclusive] = report.inconclusive.as_slice() else {
        panic!("one inconclusive probe: {report:#?}");
    };
    inconclusive
}

/// Preflight of `group` on `db` through `proxy`, with `rule` added to it
/// for the run: asserts that the rule met its command once, then that the
/// live database is as it was, with no scratch database left.
async fn preflight_answered(db: &Database, proxy: &FaultProxy, group: &str, rule: Rule) -> PreflightReport {
    let before = Live::read(db).await;
    let answered = proxy.add(rule);
    let report = preflight(&proxy.database(db).await, group).await;
    assert_eq!(answered.hits(), 1, "the proxy answered the probe's command once");
    answered.remove();
    before.assert_unchanged(db).await;
    report
}

/// Where a test of a dropped index starts: the hold on
/// [`DATABASE_LISTINGS`] (its preflight creates and drops a scratch
/// database, and the test lists them), a fresh database named for `test`
/// with `things` and its index on `legacy`, and that index's name.
async fn things(test: &str) -> (MutexGuard<'static, ()>, Database, String) {
    let alone = DATABASE_LISTINGS.lock().await;
    let db = fresh_database(test).await;
    let name = things_with_legacy_index(&db).await;
    (alone, db, name)
}

/// Where a test of a backfill starts: the hold on [`DATABASE_LISTINGS`],
/// and a fresh database named for `test` with `count` events.
async fn events_in(test: &str, count: i32) -> (MutexGuard<'static, ()>, Database) {
    let alone = DATABASE_LISTINGS.lock().await;
    let db = fresh_database(test).await;
    events(&db, count).await;
    (alone, db)
}

#[tokio::test]
async fn a_dropped_index_that_queries_used_is_in_use_with_the_servers_count_and_nothing_changes() {
    let (_alone, db, name) = things("pu_in_use").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let stats = Rule::new(
        index_stats_of(&db),
        Fault::Reply(index_stats_reply(&db, &name, &[(None, 42)])),
    );

    let report = preflight_answered(&db, &proxy, "preflight_usage", stats).await;
    let asked = proxy.exchanges(&index_stats_of(&db));
    let pipeline = asked[0].0.body.get_array("pipeline").expect("a pipeline");
    assert_eq!(
        pipeline.get(1),
        Some(&Bson::Document(doc! { "$match": { "name": &name } })),
        "only the dropped index's statistics"
    );
    assert!(
        asked[0].0.body.contains_key("maxTimeMS"),
        "bounded: {:?}",
        asked[0].0.body
    );

    assert_eq!(report.pending, ["pu_0001_drop_legacy"]);
    let finding = only_finding(&report);
    assert!(!finding.accepted, "{finding:?}");
    assert_eq!(
        fields(finding),
        (
            "pu_0001_drop_legacy",
            Code::IndexInUse,
            Severity::Hurts,
            "things",
            Some(name.as_str()),
            42
        )
    );
    assert!(finding.ids.is_empty(), "no document is about it: {finding:?}");
    assert!(
        finding
            .message
            .starts_with("queries used the index 42 times since 2026-11-30T08:00:00Z on db0.example:27017"),
        "{}",
        finding.message
    );
    assert!(
        finding.message.contains(&format!(
            "hide it first (`collMod` with `index: {{ name: \"{name}\", hidden: true }}`)"
        )),
        "{}",
        finding.message
    );
}

#[tokio::test]
async fn through_a_mongos_the_shards_uses_are_summed() {
    let (_alone, db, name) = things("pu_in_use_sharded").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let stats = Rule::new(
        index_stats_of(&db),
        Fault::Reply(index_stats_reply(
            &db,
            &name,
            &[(Some("shardA"), 5), (Some("shardB"), 0), (Some("shardC"), 6)],
        )),
    );

    let report = preflight_answered(&db, &proxy, "preflight_usage", stats).await;
    let finding = only_finding(&report);
    assert_eq!((finding.code, finding.count), (Code::IndexInUse, 11));
    assert!(
        finding.message.contains(
            " on shardA (db0.example:27017), shardB (db1.example:27017), shardC (db2.example:27017)"
        ),
        "{}",
        finding.message
    );
}

#[tokio::test]
async fn a_dropped_index_no_query_used_is_no_finding() {
    let (_alone, db, name) = things("pu_unused").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let stats = Rule::new(
        index_stats_of(&db),
        Fault::Reply(index_stats_reply(&db, &name, &[(None, 0)])),
    );

    let report = preflight_answered(&db, &proxy, "preflight_usage", stats).await;
    assert_eq!(report.pending, ["pu_0001_drop_legacy"]);
    assert!(
        report.findings.is_empty() && report.inconclusive.is_empty(),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_refused_index_stats_is_inconclusive_with_the_reason_never_clean() {
    let (_alone, db, name) = things("pu_refused").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // What a user without the `indexStats` action is answered, the
    // command quoted in the message as the server does.
    let refused = Rule::new(
        index_stats_of(&db),
        Fault::error(
            13,
            "Unauthorized",
            "not authorized on app to execute command { aggregate: \"things\", pipeline: [ { $indexStats: {} } ] }",
        ),
    );

    let report = preflight_answered(&db, &proxy, "preflight_usage", refused).await;
    let inconclusive = only_inconclusive(&report);
    assert_eq!(
        (
            inconclusive.migration.as_str(),
            inconclusive.code,
            inconclusive.collection.as_str(),
            inconclusive.index.as_deref(),
        ),
        (
            "pu_0001_drop_legacy",
            Code::IndexInUse,
            "things",
            Some(name.as_str())
        )
    );
    assert!(
        inconclusive
            .reason
            .starts_with("`$indexStats` could not say how often queries use the index (")
            && inconclusive.reason.contains("error 13 Unauthorized"),
        "{}",
        inconclusive.reason
    );
    assert!(
        !inconclusive.reason.contains("$indexStats: {}"),
        "the command is not quoted: {}",
        inconclusive.reason
    );
}

/// Without an injected reply, an index no query used is never said to be:
/// a server whose `$indexStats` answers counts no use (nothing found); one
/// that refuses the stage, as the emulator does, leaves the probe
/// inconclusive with the server's reason.
#[tokio::test]
async fn the_servers_own_index_stats_finds_an_unused_index_unused_or_cannot_say() {
    let (_alone, db, name) = things("pu_own_stats").await;
    let before = Live::read(&db).await;
    let answered = db
        .collection::<Document>("things")
        .aggregate([doc! { "$indexStats": {} }])
        .await
        .is_ok();

    let report = preflight(&db, "preflight_usage").await;
    if answered {
        assert!(
            report.findings.is_empty() && report.inconclusive.is_empty(),
            "{report:#?}"
        );
    } else {
        let inconclusive = only_inconclusive(&report);
        assert_eq!(
            (inconclusive.code, inconclusive.index.as_deref()),
            (Code::IndexInUse, Some(name.as_str()))
        );
        assert!(
            inconclusive.reason.starts_with("`$indexStats` could not say"),
            "{}",
            inconclusive.reason
        );
    }
    before.assert_unchanged(&db).await;
}

/// A hidden index serves no query: dropping it changes nothing a query
/// sees, and its statistics are not asked for. The listing a real server
/// gives of a hidden index is injected (the emulator does not keep the
/// option).
#[tokio::test]
async fn a_hidden_index_is_not_asked_about() {
    let (_alone, db, name) = things("pu_hidden").await;
    let before = Live::read(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let listing = proxy.add(Rule::list_indexes(
        db.name(),
        "things",
        vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "legacy": 1 }, "name": &name, "hidden": true },
        ],
    ));
    let stats = proxy.add(Rule::new(
        index_stats_of(&db),
        Fault::Reply(index_stats_reply(&db, &name, &[(None, 9)])),
    ));

    let report = preflight(&proxy.database(&db).await, "preflight_usage").await;
    assert!(listing.hits() >= 1, "the proxy listed the hidden index");
    assert_eq!(stats.hits(), 0, "no statistics asked for");
    assert_eq!(proxy.count(&index_stats_of(&db)), 0);
    assert!(
        report.findings.is_empty() && report.inconclusive.is_empty(),
        "{report:#?}"
    );
    before.assert_unchanged(&db).await;
}

/// The probes' reads may go to a secondary, and `$indexStats` is read from
/// the primary: each member counts only the queries it ran, and the
/// application's go to the primary. The driver tells where a read may go
/// only to a `mongos` (`$readPreference`, absent for the primary), so the
/// proxy answers the driver's handshake and monitoring as a `mongos` would;
/// the size of the collection a backfill visits, read by another probe,
/// shows the reads that may go to a secondary.
#[tokio::test]
async fn index_stats_is_read_from_the_primary_while_other_probes_may_read_a_secondary() {
    let (_alone, db, name) = things("pu_primary").await;
    let before = Live::read(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The driver's handshake and monitoring (on `admin`) only: the
    // library's own `hello`s get the server's answer, so it takes the
    // paths of the server it is (no transaction on a standalone). A
    // `mongos` takes retryable writes, which a real standalone refuses:
    // this client makes none. The wire version is 6.0's, the oldest
    // server the tests run on.
    let mongos = doc! {
        "ismaster": true, "isWritablePrimary": true, "helloOk": true, "msg": "isdbgrid",
        "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000, "localTime": DateTime::now(),
        "logicalSessionTimeoutMinutes": 30, "minWireVersion": 0, "maxWireVersion": 17, "ok": 1.0,
    };
    let on_admin = |name: &str| Match::command(name).when(|body| body.get_str("$db") == Ok("admin"));
    let handshakes = [
        proxy.add(Rule::new(on_admin("hello"), Fault::Reply(mongos.clone()))),
        proxy.add(Rule::new(on_admin("isMaster"), Fault::Reply(mongos))),
    ];
    let stats = proxy.add(Rule::new(
        index_stats_of(&db),
        Fault::Reply(index_stats_reply(&db, &name, &[(Some("shardA"), 3)])),
    ));
    let uri = format!("{}&serverSelectionTimeoutMS=2000&retryWrites=false", proxy.uri());
    let client = schema_core::mongodb::Client::with_uri_str(uri)
        .await
        .expect("the proxy's URI");

    let report = preflight(&client.database(db.name()), "preflight_usage_primary").await;
    assert!(
        handshakes.iter().map(|rule| rule.hits()).sum::<usize>() >= 1,
        "the driver was told it speaks to a mongos"
    );
    assert_eq!(stats.hits(), 1, "the proxy answered `$indexStats`");
    let found: Vec<(Code, u64)> = report.findings.iter().map(|f| (f.code, f.count)).collect();
    assert_eq!(
        found,
        [(Code::IndexInUse, 3), (Code::CollectionScan, 2)],
        "{report:#?}"
    );
    let read_preference = |body: &Document| body.get_document("$readPreference").ok().cloned();
    let (asked, _) = &proxy.exchanges(&index_stats_of(&db))[0];
    assert_eq!(
        read_preference(&asked.body),
        None,
        "the primary: {:?}",
        asked.body
    );
    let live = db.name().to_owned();
    let size = Match::command("count")
        .on("things")
        .when(move |body| body.get_str("$db") == Ok(live.as_str()));
    let exchanges = proxy.exchanges(&size);
    let (counted, _) = exchanges.first().expect("the size of `things` was read");
    assert_eq!(
        read_preference(&counted.body),
        Some(doc! { "mode": "secondaryPreferred" }),
        "the size may be read from a secondary: {:?}",
        counted.body
    );
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn a_backfill_whose_filter_no_index_serves_is_a_collection_scan_of_the_whole_collection() {
    let (_alone, db) = events_in("pu_scan", 30).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let explained = Rule::new(
        explain_of_events(&db),
        Fault::Reply(explain_reply(&db, collscan())),
    );

    let report = preflight_answered(&db, &proxy, "preflight_scan", explained).await;
    let (asked, _) = &proxy.exchanges(&explain_of_events(&db))[0];
    assert_eq!(
        asked.body.get_document("explain"),
        Ok(&doc! {
            "find": "events",
            "filter": { "kind": "old" },
            "sort": { "_id": 1 },
            "projection": { "_id": 1 },
            "limit": i64::from(schema_core::data::Backfill::DEFAULT_BATCH_SIZE),
            "collation": { "locale": "simple" },
        }),
        "the backfill's first read explained, as the walk sends it"
    );
    assert_eq!(asked.body.get_str("verbosity"), Ok("queryPlanner"), "nothing run");
    assert!(asked.body.contains_key("maxTimeMS"), "bounded: {:?}", asked.body);

    let finding = only_finding(&report);
    assert_eq!(
        fields(finding),
        (
            "pu_0101_events_kind",
            Code::CollectionScan,
            Severity::Info,
            "events",
            None,
            30
        ),
        "every document of the collection is visited"
    );
    assert!(
        finding
            .message
            .starts_with("the backfill visits the 30 documents of `events`: no index serves its filter")
            && finding
                .message
                .contains("add an index on the filter's fields first"),
        "{}",
        finding.message
    );
    assert!(finding.ids.is_empty());
    assert_eq!(
        documents(&db, "events")
            .await
            .iter()
            .filter(|event| event.get_str("kind") == Ok("old"))
            .count(),
        10,
        "the backfill did not run"
    );
}

#[tokio::test]
async fn a_backfill_whose_filter_an_index_serves_is_no_finding() {
    let (_alone, db) = events_in("pu_served", 30).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let ixscan = doc! {
        "stage": "FETCH",
        "inputStage": {
            "stage": "IXSCAN", "keyPattern": { "kind": 1 }, "indexName": "kind_1",
            "isMultiKey": false, "direction": "forward",
            "indexBounds": { "kind": ["[\"old\", \"old\"]"] },
        },
    };
    // The slot-based engine's shape, as 7.0 and later give it.
    let mut reply = explain_reply(
        &db,
        doc! { "queryPlan": ixscan, "slotBasedPlan": { "stages": "[2] nlj" } },
    );
    reply.insert("explainVersion", "2");
    let explained = Rule::new(explain_of_events(&db), Fault::Reply(reply));

    let report = preflight_answered(&db, &proxy, "preflight_scan", explained).await;
    assert!(
        report.findings.is_empty() && report.inconclusive.is_empty(),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_backfill_without_a_filter_visits_every_document_and_needs_no_explain() {
    let (_alone, db) = events_in("pu_no_filter", 12).await;
    let before = Live::read(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;

    let report = preflight(&proxy.database(&db).await, "preflight_scan_all").await;
    let finding = only_finding(&report);
    assert_eq!(
        (finding.code, finding.severity, finding.count),
        (Code::CollectionScan, Severity::Info, 12)
    );
    assert!(
        finding.message.contains(": it has no filter: it reads every one"),
        "{}",
        finding.message
    );
    assert_eq!(proxy.count(&Match::command("explain")), 0, "nothing to explain");
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn an_explain_refused_or_of_a_shape_unknown_is_inconclusive_never_clean() {
    let (_alone, db) = events_in("pu_explain_odd", 6).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;

    let timed_out = Rule::new(
        explain_of_events(&db),
        Fault::error(50, "MaxTimeMSExpired", "operation exceeded time limit"),
    );
    let report = preflight_answered(&db, &proxy, "preflight_scan", timed_out).await;
    let inconclusive = only_inconclusive(&report);
    assert_eq!(
        (inconclusive.code, inconclusive.collection.as_str()),
        (Code::CollectionScan, "events")
    );
    assert!(
        inconclusive
            .reason
            .contains("it ran longer than its 30 s (`--max-time`)"),
        "{}",
        inconclusive.reason
    );

    // A plan of a shape this version does not know.
    let listed = Rule::new(
        explain_of_events(&db),
        Fault::Reply(explain_reply(&db, doc! { "plan": [{ "detail": "SCAN events" }] })),
    );
    let report = preflight_answered(&db, &proxy, "preflight_scan", listed).await;
    assert_eq!(
        only_inconclusive(&report).reason,
        "explain's reply has no winning plan this version knows"
    );
}

/// Without an injected reply: the emulator's `explain` has a shape of its
/// own (SQLite's plan), which is inconclusive, never clean; a real server's
/// plan of an unindexed filter is a collection scan.
#[tokio::test]
async fn the_servers_own_explain_of_an_unindexed_filter_is_a_scan_or_cannot_say() {
    let (_alone, db) = events_in("pu_own_explain", 9).await;
    let before = Live::read(&db).await;

    let report = preflight(&db, "preflight_scan").await;
    match kind(&db).await {
        ServerKind::Emulator => assert_eq!(
            only_inconclusive(&report).reason,
            "explain's reply has no winning plan this version knows"
        ),
        ServerKind::Real => {
            let finding = only_finding(&report);
            assert_eq!((finding.code, finding.count), (Code::CollectionScan, 9));
        }
    }
    before.assert_unchanged(&db).await;
}

// What only a real server does: count the queries that used an index, and
// plan a filter.

#[tokio::test]
async fn real_server_an_index_queries_used_is_in_use_with_at_least_their_count() {
    let (_alone, db, name) = things("pu_real_in_use").await;
    if skip_unless_real(
        &db,
        "`$indexStats` must count the finds that used an index; the emulator has no `$indexStats`",
    )
    .await
    {
        return;
    }
    let things = db.collection::<Document>("things");
    // Range finds, each read to its end: no single-document fast path of
    // a later server skips the index's use count.
    for value in 1..=3 {
        let mut cursor = things
            .find(doc! { "legacy": { "$gte": value } })
            .hint(schema_core::mongodb::options::Hint::Name(name.clone()))
            .await
            .expect("a find using the index");
        while cursor.advance().await.expect("read to its end") {}
    }
    let before = Live::read(&db).await;

    let report = preflight(&db, "preflight_usage").await;
    let finding = only_finding(&report);
    assert_eq!(
        (finding.code, finding.severity, finding.index.as_deref()),
        (Code::IndexInUse, Severity::Hurts, Some(name.as_str()))
    );
    assert!(finding.count >= 3, "the three finds at least: {finding:?}");
    before.assert_unchanged(&db).await;
}

#[tokio::test]
async fn real_server_a_backfill_filter_on_an_unindexed_field_scans_and_on_an_indexed_one_does_not() {
    let (_alone, db) = events_in("pu_real_scan", 30).await;
    if skip_unless_real(
        &db,
        "`explain` must give the server's winning plan; the emulator gives SQLite's",
    )
    .await
    {
        return;
    }
    let report = preflight(&db, "preflight_scan").await;
    let finding = only_finding(&report);
    assert_eq!(
        (finding.code, finding.severity, finding.count),
        (Code::CollectionScan, Severity::Info, 30)
    );

    db.run_command(doc! {
        "createIndexes": "events",
        "indexes": [{ "key": { "kind": 1 }, "name": "kind_1" }],
    })
    .await
    .expect("an index on the filter's field");
    // On every member before `explain` may read one.
    schema_tests::live::settle(&db).await;
    let before = Live::read(&db).await;
    let report = preflight(&db, "preflight_scan").await;
    assert!(
        report.findings.is_empty() && report.inconclusive.is_empty(),
        "{report:#?}"
    );
    before.assert_unchanged(&db).await;
}
