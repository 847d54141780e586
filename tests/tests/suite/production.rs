//! Operating an application in production, with real processes: a rolling
//! deploy (two releases of one application, the second with one more
//! migration), seeing and clearing a stuck or malformed lock from the
//! command line, and errors as data with `--json`.

use std::process::{Command, Output};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_tests::workers::line;
use schema_tests::{documents, fresh_database, ran, record_ids};

const V1: &str = env!("CARGO_BIN_EXE_deploy-v1");
const V2: &str = env!("CARGO_BIN_EXE_deploy-v2");
const CLI: &str = env!("CARGO_BIN_EXE_schema-cli");

fn run(binary: &str, db: &Database, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .args(args)
        .env("MONGODB_URI", schema_tests::uri())
        .env("WORKER_DB", db.name())
        .envs(env.iter().copied())
        .output()
        .expect("run the application")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {}", stdout(output)))
}

#[tokio::test]
async fn an_older_release_starts_during_a_rolling_deploy_and_strict_ones_say_what_to_do() {
    let db = fresh_database("rolling_deploy").await;

    // The new release goes first and applies its new migration.
    let newer = run(V2, &db, &[], &[]);
    assert_eq!(code(&newer), 0, "{}", stderr(&newer));
    assert_eq!(
        line(&stdout(&newer), "applied"),
        Some("d_0001_accounts,d_0002_sessions,d_0003_referrals")
    );

    // An old pod restarts meanwhile: by default it starts, and warns.
    let older = run(V1, &db, &[], &[]);
    assert_eq!(code(&older), 0, "{}", stderr(&older));
    assert_eq!(line(&stdout(&older), "applied"), Some(""));
    assert_eq!(line(&stdout(&older), "unknown"), Some("d_0003_referrals"));
    assert!(
        stderr(&older).contains("WARN") && stderr(&older).contains("d_0003_referrals"),
        "the unknown record is a warning: {}",
        stderr(&older)
    );
    assert_eq!(code(&run(V1, &db, &["status", "--check"], &[])), 0);

    // With `on_unknown(Policy::Fail)` it refuses, naming the id and the way.
    let strict = run(V1, &db, &[], &[("ON_UNKNOWN", "fail")]);
    assert_eq!(code(&strict), 1);
    let message = stderr(&strict);
    assert!(message.contains("`d_0003_referrals`"), "{message}");
    assert!(message.contains("rolling deploy"), "{message}");
    assert!(message.contains("on_unknown(Policy::Warn)"), "{message}");
    assert!(message.contains("forget --unknown"), "{message}");
    assert_eq!(
        code(&run(V1, &db, &["status", "--check"], &[("ON_UNKNOWN", "fail")])),
        3
    );

    // Rolled back for good: the old release removes the newer record.
    let forgotten = run(V1, &db, &["forget", "--unknown", "d_0003_referrals"], &[]);
    assert_eq!(code(&forgotten), 0, "{}", stderr(&forgotten));
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["d_0001_accounts", "d_0002_sessions"]
    );
    let strict = run(V1, &db, &[], &[("ON_UNKNOWN", "fail")]);
    assert_eq!(code(&strict), 0, "{}", stderr(&strict));
    assert_eq!(
        ran(&db).await,
        ["d_0001_accounts", "d_0002_sessions", "d_0003_referrals"],
        "nothing ran twice"
    );
    assert!(documents(&db, "schema_lock").await.is_empty());
}

fn in_an_hour() -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() + 3_600_000)
}

fn an_hour_ago() -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() - 3_600_000)
}

async fn plant_lock(db: &Database, lock: Document) {
    db.collection::<Document>("schema_lock")
        .insert_one(schema_tests::held_lock(lock))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_lock_can_be_seen_and_cleared_from_the_command_line() {
    let db = fresh_database("cli_lock").await;
    let nobody = run(CLI, &db, &["lock"], &[]);
    assert_eq!(code(&nobody), 0);
    assert_eq!(
        stdout(&nobody),
        "start:\nnobody holds it\n\nbackground:\nnobody holds it\n"
    );

    plant_lock(
        &db,
        doc! {
            "_id": "schema_versions", "owner": "api-7:4242:abc", "host": "api-7", "pid": 4242_i64,
            "acquired_at": an_hour_ago(), "renewed_at": in_an_hour(), "lease_ms": 30_000_i64,
            "running": "o_0002_orders_ttl",
        },
    )
    .await;
    let shown = run(CLI, &db, &["lock"], &[]);
    let text = stdout(&shown);
    assert!(text.contains("api-7:4242:abc"), "{text}");
    assert!(text.contains("api-7 (pid 4242)"), "{text}");
    assert!(text.contains("running:      o_0002_orders_ttl"), "{text}");
    assert!(text.contains("(live)"), "{text}");
    let shown = json(&run(CLI, &db, &["lock", "--json"], &[]));
    assert_eq!(shown["locks"]["start"]["owner"], "api-7:4242:abc");
    assert_eq!(shown["locks"]["start"]["pid"], 4242);
    assert_eq!(shown["locks"]["start"]["expired"], false);
    assert!(
        shown["locks"]["start"]["lease_ends_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // A live lock is not removed without --force, and says why.
    let refused = run(CLI, &db, &["unlock", "--json"], &[]);
    assert_eq!(code(&refused), 1);
    assert_eq!(json(&refused)["error"]["kind"], "lock_held");
    assert_eq!(documents(&db, "schema_lock").await.len(), 1);
    let forced = run(CLI, &db, &["unlock", "--force"], &[]);
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert!(documents(&db, "schema_lock").await.is_empty());

    // An expired lock is removed by a plain unlock, after recording what
    // its holder completed.
    let completed = doc! {
        "id": "o_0001_orders", "checksum": "0", "description": "Orders by customer",
        "duration_ms": 3_i64, "applied_by": "api-7:4242", "marked": false,
    };
    plant_lock(
        &db,
        doc! {
            "_id": "schema_versions", "owner": "api-7:4242:abc", "renewed_at": an_hour_ago(),
            "lease_ms": 30_000_i64, "running": "o_0002_orders_ttl", "done": [completed],
        },
    )
    .await;
    let shown = json(&run(CLI, &db, &["lock", "--json"], &[]));
    assert_eq!(shown["locks"]["start"]["expired"], true);
    assert_eq!(
        shown["locks"]["start"]["unrecorded"],
        serde_json::json!(["o_0001_orders"])
    );
    let unlocked = run(CLI, &db, &["unlock"], &[]);
    assert_eq!(code(&unlocked), 0, "{}", stderr(&unlocked));
    assert_eq!(stdout(&unlocked), "removed the start lock\n");
    assert!(documents(&db, "schema_lock").await.is_empty());
    assert_eq!(record_ids(&db, "schema_versions").await, ["o_0001_orders"]);
    assert!(ran(&db).await.is_empty(), "unlocking runs nothing");

    // The background lock is its own: shown apart, left alone by a plain
    // `unlock`, removed with `--background`.
    plant_lock(
        &db,
        doc! {
            "_id": "schema_versions$background", "owner": "worker-2:77:def", "renewed_at": an_hour_ago(),
            "lease_ms": 30_000_i64, "running": "o_0009_search",
        },
    )
    .await;
    let shown = json(&run(CLI, &db, &["lock", "--json"], &[]));
    assert_eq!(shown["locks"]["start"], serde_json::Value::Null, "{shown}");
    assert_eq!(
        shown["locks"]["background"]["owner"], "worker-2:77:def",
        "{shown}"
    );
    assert_eq!(
        shown["locks"]["background"]["running"], "o_0009_search",
        "{shown}"
    );
    let unlocked = run(CLI, &db, &["unlock"], &[]);
    assert_eq!(stdout(&unlocked), "nobody holds the start lock\n");
    assert_eq!(documents(&db, "schema_lock").await.len(), 1);
    let unlocked = run(CLI, &db, &["unlock", "--background"], &[]);
    assert_eq!(code(&unlocked), 0, "{}", stderr(&unlocked));
    assert_eq!(stdout(&unlocked), "removed the background lock\n");
    assert!(documents(&db, "schema_lock").await.is_empty());
}

#[tokio::test]
async fn a_malformed_lock_names_the_field_and_the_way_out_and_never_blocks() {
    let db = fresh_database("cli_malformed_lock").await;
    plant_lock(
        &db,
        doc! { "_id": "schema_versions", "owner": "x", "renewed_at": "soon", "lease_ms": 1 },
    )
    .await;

    for args in [&["lock"][..], &["apply"], &["unlock"]] {
        let output = run(CLI, &db, args, &[]);
        assert_eq!(code(&output), 1, "{args:?}");
        let message = stderr(&output);
        assert!(message.contains("`renewed_at`"), "{args:?}: {message}");
        assert!(message.contains("`unlock --force`"), "{args:?}: {message}");
    }
    let apply = run(CLI, &db, &["apply", "--json"], &[]);
    assert_eq!(json(&apply)["error"]["kind"], "malformed_lock");

    assert_eq!(code(&run(CLI, &db, &["unlock", "--force"], &[])), 0);
    assert_eq!(code(&run(CLI, &db, &["apply"], &[])), 0);
    assert_eq!(record_ids(&db, "schema_versions").await.len(), 3);
}

#[tokio::test]
async fn the_help_lists_every_command_and_exit_status() {
    let db = fresh_database("cli_help").await;
    let help = run(CLI, &db, &["--help"], &[]);
    assert_eq!(code(&help), 0);
    let text = stdout(&help);
    for word in [
        "status",
        "plan",
        "apply",
        "forget",
        "mark-applied",
        "lock",
        "unlock",
        "Exit status",
        "  3  ",
    ] {
        assert!(text.contains(word), "{word} in {text}");
    }
    let forget = stdout(&run(CLI, &db, &["forget", "--help"], &[]));
    assert!(forget.contains("--unknown"), "{forget}");
    let unlock = stdout(&run(CLI, &db, &["unlock", "--help"], &[]));
    assert!(unlock.contains("--force"), "{unlock}");
}
