//! The embedded command line, run as a process: every command, as a table
//! and as JSON, and its exit statuses.
//!
//! Most tests run the `schema-cli` binary. The progress of `apply` needs a
//! migration with a backfill, which that binary's set has not: its test
//! runs this test binary again as the command line, on the migration
//! declared here (the group `cli`).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use schema_core::data::Backfill;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::{Migrations, SchemaManager, migration};
use schema_tests::{documents, fresh_database, ran, record_ids};

const ALL: [&str; 3] = ["o_0001_orders", "o_0002_orders_ttl", "o_0003_invoices"];

fn cli(db: &Database, args: &[&str]) -> Output {
    cli_with(db, args, &[])
}

fn cli_with(db: &Database, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schema-cli"))
        .args(args)
        .env("MONGODB_URI", schema_tests::uri())
        .env("WORKER_DB", db.name())
        .envs(env.iter().copied())
        .output()
        .expect("run schema-cli")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {}", stdout(output)))
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

#[tokio::test]
async fn status_plan_and_apply_as_tables_and_as_json() {
    let db = fresh_database("cli_status").await;

    let status = cli(&db, &["status"]);
    assert_eq!(code(&status), 0);
    let text = stdout(&status);
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATE") && header.contains("DESCRIPTION"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|line| line.starts_with("o_0002_orders_ttl"))
        .expect("a row per migration");
    assert!(row.contains("pending") && row.ends_with("Orders expire"), "{row}");
    // Columns are aligned: every row's state starts where the header's does.
    let column = header.find("STATE").unwrap();
    assert_eq!(&row[column..column + 7], "pending");
    assert!(text.contains("3 pending, 0 drifted, 0 unknown"), "{text}");

    assert_eq!(
        code(&cli(&db, &["status", "--check"])),
        3,
        "pending fails the check"
    );

    let plan = json(&cli(&db, &["plan", "--json"]));
    let ids: Vec<&str> = plan["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ALL);
    let plan = stdout(&cli(&db, &["plan"]));
    assert!(
        plan.lines().nth(1).unwrap().starts_with("1  o_0001_orders"),
        "{plan}"
    );

    let applied = json(&cli(&db, &["apply", "--json"]));
    assert_eq!(applied["applied"], serde_json::json!(ALL));
    // The JSON is the report's serialization: durations in milliseconds
    // by id, and the takeover, if any.
    assert!(applied["durations_ms"]["o_0001_orders"].is_u64(), "{applied}");
    assert_eq!(applied["interrupted"], serde_json::Value::Null);
    assert_eq!(record_ids(&db, "schema_versions").await, ALL);
    assert_eq!(ran(&db).await, ALL);

    let again = cli(&db, &["apply"]);
    assert_eq!(code(&again), 0);
    assert!(
        stdout(&again).contains("0 applied, 3 already applied"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        code(&cli(&db, &["status", "--check"])),
        0,
        "up to date passes the check"
    );
    let status = json(&cli(&db, &["status", "--json"]));
    assert_eq!(status["up_to_date"], true);
    assert_eq!(status["migrations"][0]["state"], "applied");
    assert_eq!(stdout(&cli(&db, &["plan"])), "nothing to apply\n");
}

#[tokio::test]
async fn forget_and_mark_applied_change_only_the_records() {
    let db = fresh_database("cli_forget").await;
    assert_eq!(code(&cli(&db, &["apply"])), 0);

    let forgot = cli(&db, &["forget", "o_0002_orders_ttl"]);
    assert_eq!(code(&forgot), 0);
    assert!(stdout(&forgot).contains("forgot `o_0002_orders_ttl`"));
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["o_0001_orders", "o_0003_invoices"]
    );
    let forgot = json(&cli(&db, &["forget", "o_0002_orders_ttl", "--json"]));
    assert_eq!(forgot["removed"], false);

    let marked = json(&cli(&db, &["mark-applied", "o_0002_orders_ttl", "--json"]));
    assert_eq!(marked["marked"], serde_json::json!(["o_0002_orders_ttl"]));
    assert_eq!(record_ids(&db, "schema_versions").await, ALL);
    assert_eq!(ran(&db).await, ALL, "marking ran nothing");
    let record = db
        .collection::<Document>("schema_versions")
        .find_one(doc! { "_id": "o_0002_orders_ttl" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.get_bool("marked_applied"), Ok(true));

    let marked = cli(&db, &["mark-applied", "o_0003_invoices"]);
    assert!(
        stdout(&marked).contains("already recorded"),
        "{}",
        stdout(&marked)
    );
}

#[tokio::test]
async fn errors_exit_non_zero_with_a_message() {
    let db = fresh_database("cli_errors").await;
    let unknown = cli(&db, &["forget", "o_9999_nothing"]);
    assert_eq!(code(&unknown), 1);
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no registered migration has the id `o_9999_nothing`"),
        "{unknown:?}"
    );
    let unknown = cli(&db, &["mark-applied", "o_9999_nothing", "--json"]);
    assert_eq!(code(&unknown), 1);
    let unknown = json(&unknown);
    assert_eq!(unknown["error"]["kind"], "unknown_migration");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("o_9999_nothing")
    );

    assert_eq!(code(&cli(&db, &["nonsense"])), 2, "usage errors are status 2");
    assert!(record_ids(&db, "schema_versions").await.is_empty());
}

#[tokio::test]
async fn drifted_and_unknown_records_show_in_status_and_fail_the_check() {
    let db = fresh_database("cli_drift").await;
    assert_eq!(code(&cli(&db, &["apply"])), 0);
    let versions = db.collection::<Document>("schema_versions");
    versions
        .update_one(
            doc! { "_id": "o_0001_orders" },
            doc! { "$set": { "checksum": "0123456789abcdef" } },
        )
        .await
        .unwrap();
    versions
        .insert_one(doc! { "_id": "o_0004_from_a_newer_release", "description": "newer" })
        .await
        .unwrap();

    // With the default policies (warn), only pending migrations fail the
    // check; with strict ones, drift and unknown records do too.
    assert_eq!(code(&cli(&db, &["status", "--check"])), 0);
    let status = cli_with(&db, &["status", "--check"], &[("SCHEMA_STRICT", "1")]);
    assert_eq!(code(&status), 3, "drift fails a strict check");
    let text = stdout(&status);
    let row = text
        .lines()
        .find(|line| line.starts_with("o_0001_orders"))
        .unwrap();
    assert!(row.contains("drifted"), "{row}");
    let row = text
        .lines()
        .find(|line| line.starts_with("o_0004_from_a_newer_release"))
        .unwrap();
    assert!(row.contains("unknown"), "{row}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("drifted o_0001_orders: ")
                && line.ends_with("run `mark-applied o_0001_orders`")),
        "the drift line says what to run:\n{text}"
    );
    let status = json(&cli(&db, &["status", "--json"]));
    assert_eq!(status["migrations"][0]["state"], "drifted");
    assert_eq!(status["migrations"][0]["recorded_checksum"], "0123456789abcdef");
    assert_eq!(status["unknown"][0]["id"], "o_0004_from_a_newer_release");

    // The help of both commands says how to accept the edit.
    let help = stdout(&cli(&db, &["status", "--help"]));
    assert!(
        help.contains("drifted") && help.contains("run `mark-applied <id>`"),
        "{help}"
    );
    let help = stdout(&cli(&db, &["mark-applied", "--help"]));
    assert!(
        help.contains("to accept the edit of a drifted migration"),
        "{help}"
    );
    // Accepting the edit clears the drift.
    let accepted = json(&cli(&db, &["mark-applied", "o_0001_orders", "--json"]));
    assert_eq!(accepted["marked"], serde_json::json!(["o_0001_orders"]));
    let status = json(&cli(&db, &["status", "--json"]));
    assert_eq!(status["migrations"][0]["state"], "applied");
}

#[tokio::test]
async fn the_commands_nest_in_an_applications_own_command_line() {
    let db = fresh_database("cli_nested").await;
    let nested = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nested-cli"))
            .args(args)
            .env("MONGODB_URI", schema_tests::uri())
            .env("WORKER_DB", db.name())
            .output()
            .expect("run nested-cli")
    };
    assert_eq!(stdout(&nested(&["serve"])), "serving\n");
    let help = stdout(&nested(&["schema", "--help"]));
    assert!(help.contains("status") && help.contains("unlock"), "{help}");

    let applied = nested(&["schema", "apply", "--json"]);
    assert_eq!(code(&applied), 0, "{applied:?}");
    assert_eq!(json(&applied)["applied"], serde_json::json!(["n_0001_carts"]));
    assert_eq!(ran(&db).await, ["n_0001_carts"]);
    let status = nested(&["schema", "status", "--check"]);
    assert_eq!(code(&status), 0);
    assert_eq!(code(&nested(&["schema", "nonsense"])), 2);
}

#[tokio::test]
async fn table_columns_line_up_by_display_width() {
    let db = fresh_database("cli_width").await;
    // A record from another tool, with wide characters in its description.
    db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "o_0000_移行", "description": "古い記録" })
        .await
        .unwrap();
    let text = stdout(&cli(&db, &["status"]));
    let state_column = |line: &str| {
        let state = ["STATE", "pending", "unknown"]
            .iter()
            .find_map(|word| line.find(word))
            .expect("a state in every row");
        unicode_width::UnicodeWidthStr::width(&line[..state])
    };
    let columns: Vec<usize> = text
        .lines()
        .take_while(|line| !line.is_empty())
        .map(state_column)
        .collect();
    assert!(
        columns.windows(2).all(|pair| pair[0] == pair[1]),
        "{columns:?}\n{text}"
    );
}

/// When set, the progress test's run of this binary as the command line,
/// with these arguments.
const AS_CLI: &str = "SCHEMA_CLI_TEST_ARGS";

/// Every event gets a status, ten at a time and at most 100 a second, so
/// that 400 take four seconds.
#[migration(id = "c_0001_events_status", group = "cli")]
async fn events_status(db: &Database) -> Result<(), schema_core::Error> {
    Backfill::new(db, "events")
        .filter(doc! { "status": { "$exists": false } })
        .update(doc! { "$set": { "status": "pending" } })
        .batch_size(10)
        .max_per_second(100)
        .run()
        .await?;
    Ok(())
}

/// The lock of a process that is running `o_0002_orders_ttl`, with two of
/// its backfills under way (the second one on the same collection, just
/// started and of unknown size).
fn lock_with_backfills() -> Document {
    schema_tests::held_lock(doc! {
        "_id": "schema_versions",
        "owner": "api-7:4321:5f3a",
        "host": "api-7",
        "pid": 4321_i64,
        "acquired_at": DateTime::from_millis(1_790_000_000_000),
        "renewed_at": DateTime::now(),
        "lease_ms": 60_000_i64,
        "running": "o_0002_orders_ttl",
        "checkpoints": [
            {
                "migration": "o_0002_orders_ttl",
                "checksum": "0123456789abcdef",
                "key": "orders",
                "collection": "orders",
                // A natural key: shown by its type, never itself.
                "position": "ada@example.com",
                "visited": 12_000_i64,
                "matched": 12_000_i64,
                "modified": 11_990_i64,
                "batches": 12_i64,
                "total": 100_000_i64,
                "started_at": DateTime::from_millis(1_790_000_000_000),
                "by": "api-7:4321",
            },
            {
                "migration": "o_0002_orders_ttl",
                "checksum": "0123456789abcdef",
                "key": "orders#2",
                "collection": "orders",
                "position": null,
                "visited": 0_i64,
                "matched": null,
                "modified": null,
                "batches": 0_i64,
                "total": null,
                "started_at": DateTime::from_millis(1_790_000_050_000),
                "by": "api-7:4321",
            },
        ],
        "checkpointed_at": DateTime::from_millis(1_790_000_060_000),
    })
}

const FIRST_BACKFILL: &str = "backfill of o_0002_orders_ttl on orders: 12000 of 100000 done (12%) \
     in 12 batches, by api-7:4321, since 2026-09-21T14:13:20.000Z, last moved 2026-09-21T14:14:20.000Z";
const SECOND_BACKFILL: &str = "backfill orders#2 of o_0002_orders_ttl on orders: 0 done in 0 batches, \
     by api-7:4321, since 2026-09-21T14:14:10.000Z, last moved 2026-09-21T14:14:20.000Z";

#[tokio::test]
async fn status_and_lock_show_the_backfills_under_way() {
    let db = fresh_database("cli_backfills").await;
    assert_eq!(code(&cli(&db, &["mark-applied", "o_0001_orders"])), 0);
    db.collection::<Document>("schema_lock")
        .insert_one(lock_with_backfills())
        .await
        .unwrap();

    let status = cli(&db, &["status"]);
    assert_eq!(code(&status), 0, "{status:?}");
    let text = stdout(&status);
    let after_table: Vec<&str> = text.lines().skip_while(|line| !line.is_empty()).skip(1).collect();
    assert_eq!(
        after_table,
        ["2 pending, 0 drifted, 0 unknown", FIRST_BACKFILL, SECOND_BACKFILL],
        "{text}"
    );

    let status = json(&cli(&db, &["status", "--json"]));
    assert!(!status.to_string().contains("ada@"), "{status}");
    assert_eq!(
        status["backfills"],
        serde_json::json!([
            {
                "migration": "o_0002_orders_ttl",
                "key": "orders",
                "collection": "orders",
                "done": 12_000,
                "total": 100_000,
                "batches": 12,
                "last_id_type": "string",
                "unanswered": 0,
                "by": "api-7:4321",
                "owner": "api-7:4321:5f3a",
                "started_at": "2026-09-21T14:13:20Z",
                "updated_at": "2026-09-21T14:14:20Z",
            },
            {
                "migration": "o_0002_orders_ttl",
                "key": "orders#2",
                "collection": "orders",
                "done": 0,
                "total": null,
                "batches": 0,
                "last_id_type": null,
                "unanswered": 0,
                "by": "api-7:4321",
                "owner": "api-7:4321:5f3a",
                "started_at": "2026-09-21T14:14:10Z",
                "updated_at": "2026-09-21T14:14:20Z",
            },
        ]),
        "{status}"
    );

    let lock = cli(&db, &["lock"]);
    assert_eq!(code(&lock), 0, "{lock:?}");
    let text = stdout(&lock);
    assert!(
        text.starts_with("start:\nholder:       api-7:4321:5f3a\n"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "{FIRST_BACKFILL}\n{SECOND_BACKFILL}\n\nbackground:\nnobody holds it\n"
        )),
        "{text}"
    );
    let lock = json(&cli(&db, &["lock", "--json"]));
    assert_eq!(lock["locks"]["start"]["backfills"], status["backfills"], "{lock}");
    assert_eq!(lock["locks"]["start"]["running"], "o_0002_orders_ttl");
    assert_eq!(lock["locks"]["background"], serde_json::Value::Null, "{lock}");
}

#[tokio::test]
async fn status_shows_no_backfills_when_nothing_is_pending() {
    let db = fresh_database("cli_no_backfills").await;
    assert_eq!(code(&cli(&db, &["apply"])), 0);
    // A lock left with checkpoints: nothing is pending, so none can be
    // under way, and status does not read the lock.
    db.collection::<Document>("schema_lock")
        .insert_one(lock_with_backfills())
        .await
        .unwrap();
    let status = cli(&db, &["status"]);
    // It did show the status (every migration applied), only no backfill.
    assert_eq!(code(&status), 0, "{status:?}");
    assert!(
        stdout(&status).contains("applied") && stdout(&status).contains("o_0001"),
        "{}",
        stdout(&status)
    );
    assert!(!stdout(&status).contains("backfill"), "{}", stdout(&status));
    let status = json(&cli(&db, &["status", "--json"]));
    assert_eq!(status["backfills"], serde_json::json!([]), "{status}");
}

/// Runs this test binary as the command line with `args`, on `db`.
fn this_binary_as_cli(db: &Database, args: &str) -> Output {
    let this = std::env::current_exe().expect("the test binary's path");
    Command::new(this)
        .args([
            "--exact",
            "cli::apply_tells_how_its_backfills_go_on_a_piped_stderr",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(AS_CLI, args)
        .env("MONGODB_URI", schema_tests::uri())
        .env("WORKER_DB", db.name())
        .output()
        .expect("run the test binary as the command line")
}

async fn run_as_cli(args: &str) {
    let (_, client, db) = schema_tests::worker_database().await.expect("the test database");
    let args = std::iter::once("schema-cli").chain(args.split(' '));
    let manager = SchemaManager::new(db).migrations(Migrations::group("cli").expect("a valid group"));
    let code = schema_core::cli::run_with(manager, args).await;
    client.shutdown().await;
    assert_eq!(code, std::process::ExitCode::SUCCESS);
}

/// Runs `apply` through [`this_binary_as_cli`], which is this same test run
/// as the command line when [`AS_CLI`] is set.
#[tokio::test(flavor = "multi_thread")]
async fn apply_tells_how_its_backfills_go_on_a_piped_stderr() {
    if let Ok(args) = std::env::var(AS_CLI) {
        return run_as_cli(&args).await;
    }
    let db = fresh_database("cli_progress").await;
    let events = db.collection::<Document>("events");
    events
        // Five digits each: the emulator the tests may run on sorts
        // integer `_id`s as text.
        .insert_many((10_000..10_400_i64).map(|id| doc! { "_id": id }))
        .await
        .unwrap();

    let started = Instant::now();
    let applied = this_binary_as_cli(&db, "apply");
    let took = started.elapsed();
    assert!(applied.status.success(), "{applied:?}");
    assert!(
        stdout(&applied).contains("applied c_0001_events_status ("),
        "{}",
        stdout(&applied)
    );
    let stderr = String::from_utf8_lossy(&applied.stderr).into_owned();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("backfill"))
        .collect();
    let prefix = "backfill c_0001_events_status on events: ";
    let (last, under_way) = lines.split_last().expect("a line when it finished");
    assert!(
        last.starts_with(&format!("{prefix}400 of 400 (100%), ")) && last.ends_with("/s, finished"),
        "{stderr}"
    );
    // Four seconds at least, a line at most every two: one or more while
    // under way (the first two seconds after the first batch), each with
    // the time left.
    assert!(took >= Duration::from_millis(3_900), "{took:?}");
    assert!(!under_way.is_empty(), "{stderr}");
    assert!(
        under_way.len() as f64 <= took.as_secs_f64() / 2.0,
        "{} lines in {took:?}: {stderr}",
        under_way.len()
    );
    for line in under_way {
        assert!(
            line.starts_with(prefix)
                && line.contains(" of 400 (")
                && line.contains("/s, about ")
                && line.ends_with(" s left"),
            "{line}"
        );
    }
    let events_now = documents(&db, "events").await;
    assert_eq!(events_now.len(), 400);
    assert!(
        events_now
            .iter()
            .all(|event| event.get_str("status") == Ok("pending")),
        "{events_now:?}"
    );

    // With --json, no progress at all: the report is JSON on stdout, and
    // stderr has nothing of the backfill, which did run.
    db.collection::<Document>("schema_versions")
        .delete_one(doc! { "_id": "c_0001_events_status" })
        .await
        .unwrap();
    events
        .update_many(
            doc! { "_id": { "$lt": 10_100_i64 } },
            doc! { "$unset": { "status": "" } },
        )
        .await
        .unwrap();
    let applied = this_binary_as_cli(&db, "apply --json");
    assert!(applied.status.success(), "{applied:?}");
    let stderr = String::from_utf8_lossy(&applied.stderr).into_owned();
    assert!(!stderr.contains("backfill"), "{stderr}");
    // The test harness prints its own words around the command line's:
    // the report is on the line of the test's name, after it.
    let text = stdout(&applied);
    let report = text
        .find('{')
        .and_then(|start| text[start..].lines().next())
        .unwrap_or_else(|| panic!("no report in {text}"));
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(report["applied"], serde_json::json!(["c_0001_events_status"]));
    let events_now = documents(&db, "events").await;
    assert!(
        events_now
            .iter()
            .all(|event| event.get_str("status") == Ok("pending")),
        "{events_now:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_shows_the_index_and_the_code_but_not_the_duplicate_value() {
    use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
    let db = fresh_database("cli_no_values").await;
    let sentinel = "sentinel-c11a5e@example.org";
    db.collection::<Document>("duplicate")
        .insert_one(doc! { "email": sentinel })
        .await
        .unwrap();
    // The second insert is refused as MongoDB refuses a duplicate key, its
    // message quoting the value (the emulator's message does not).
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let refusal = schema_tests::duplicate_key_reply(db.name(), "users", "email", sentinel);
    let through = [("MONGODB_URI", proxy.uri())];
    let through: Vec<(&str, &str)> = through
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();

    for args in [&["apply", "--json"][..], &["apply"]] {
        let inserts = std::sync::atomic::AtomicUsize::new(0);
        let duplicate = proxy.add(Rule::new(
            Match::command("insert")
                .on("users")
                .when(move |_| inserts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1),
            Fault::Reply(refusal.clone()),
        ));
        let applied = cli_with(&db, args, &through);
        assert_eq!(duplicate.hits(), 1, "{args:?}: the duplicate was refused");
        duplicate.remove();
        db.collection::<Document>("users").drop().await.unwrap();
        assert_eq!(code(&applied), 1, "{applied:?}");
        let everything = format!("{}{}", stdout(&applied), String::from_utf8_lossy(&applied.stderr));
        assert!(!everything.contains("sentinel-c11a5e"), "{everything}");
        assert!(everything.contains("index: email_1"), "{everything}");
        if args.contains(&"--json") {
            let error = &json(&applied)["error"];
            assert_eq!(error["kind"], "migration_failed");
            let message = error["message"].as_str().expect("a message");
            assert!(message.contains("o_0003_invoices"), "{message}");
            assert!(message.contains("11000"), "{message}");
        }
    }
}
