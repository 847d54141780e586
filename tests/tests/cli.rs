//! The embedded command line, run as a process: every command, as a table
//! and as JSON, and its exit statuses.

use std::process::{Command, Output};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_tests::{fresh_database, ran, record_ids};

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
    let status = json(&cli(&db, &["status", "--json"]));
    assert_eq!(status["migrations"][0]["state"], "drifted");
    assert_eq!(status["migrations"][0]["recorded_checksum"], "0123456789abcdef");
    assert_eq!(status["unknown"][0]["id"], "o_0004_from_a_newer_release");

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
