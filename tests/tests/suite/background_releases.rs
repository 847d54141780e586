//! Deploys never wait on long work, and every process sees what failed:
//! real processes of `background-service` (release 1: a migration at
//! start, a background one held by the collection `gate`) and
//! `background-service-v2` (release 2: one more at start).
//!
//! - Release 2 starts while release 1's background migration runs: it is
//!   ready in seconds, its start-time migration recorded once, the
//!   background migration still held by release 1's process (it took the
//!   background lock; the start took the start lock), then recorded once.
//! - A background migration fails in one process while another process
//!   runs `wait`: that `wait` exits 1 within a few seconds, naming the
//!   migration and the kind, and `status` in a third shows the failure.

use std::process::Output;
use std::time::{Duration, Instant};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_tests::workers::{self, Lines, Worker};
use schema_tests::{fresh_database, ran, record_ids};

const RELEASE_1: &str = env!("CARGO_BIN_EXE_background-service");
const RELEASE_2: &str = env!("CARGO_BIN_EXE_background-service-v2");
const AT_START: &str = "bg_0001_events";
const BACKGROUND: &str = "bg_0002_backfill";
const ADDED_AT_START: &str = "bg_0003_sessions";

async fn open_gate(db: &Database, fail: bool) {
    db.collection::<Document>("gate")
        .insert_one(doc! { "fail": fail })
        .await
        .expect("open the gate");
}

/// Waits until `ran` holds `note`.
async fn until_ran(db: &Database, note: &str, deadline: Instant) {
    while !ran(db).await.iter().any(|seen| seen == note) {
        assert!(Instant::now() < deadline, "{note} in time: {:?}", ran(db).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pid a lock document names.
fn pid(lock: &Document) -> Option<i64> {
    lock.get("pid")
        .and_then(|pid| pid.as_i64().or(pid.as_i32().map(i64::from)))
}

/// A command of release 1's command line on `db`, to its end.
async fn command(db: &Database, arguments: &[&str], deadline: Instant) -> Output {
    let child = Worker::new(RELEASE_1, db, 2000).spawn_with(arguments);
    tokio::task::spawn_blocking(move || workers::finish(child, deadline))
        .await
        .expect("wait for the command")
}

#[tokio::test]
async fn the_next_release_starts_while_the_last_one_s_background_migration_runs() {
    let db = fresh_database("releases_overlap").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut first = Worker::new(RELEASE_1, &db, 2000).spawn();
    let first_pid = i64::from(first.id());
    let mut first_lines = Lines::of(&mut first);
    assert_eq!(
        first_lines.wait_for("ready", deadline).as_deref(),
        Some(BACKGROUND),
        "{}",
        first_lines.seen()
    );
    until_ran(&db, "bg_0002_backfill started", deadline).await;
    // Release 1's task holds the background lock, running the migration.
    let held = workers::background_lock_document(&db)
        .await
        .expect("the background lock");
    assert_eq!(
        (pid(&held), held.get_str("running")),
        (Some(first_pid), Ok(BACKGROUND))
    );

    // Release 2 starts now, with a lock wait far longer than the test: it
    // must not wait for the background migration.
    let started = Instant::now();
    let mut second = Worker::new(RELEASE_2, &db, 2000).spawn();
    let second_pid = i64::from(second.id());
    let mut second_lines = Lines::of(&mut second);
    let ready = second_lines.wait_for("ready", deadline);
    let took = started.elapsed();
    assert_eq!(ready.as_deref(), Some(BACKGROUND), "{}", second_lines.seen());
    assert!(
        took < Duration::from_secs(20),
        "release 2 was ready in {took:?}, not after the background migration"
    );
    // The fault this test is about was there: when release 2 was ready,
    // release 1 still held the background lock and had not finished.
    let still = workers::background_lock_document(&db)
        .await
        .expect("the background lock");
    assert_eq!(
        (pid(&still), still.get_str("running")),
        (Some(first_pid), Ok(BACKGROUND))
    );
    assert!(
        !ran(&db)
            .await
            .iter()
            .any(|note| note == "bg_0002_backfill finished")
    );
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        [AT_START, ADDED_AT_START]
    );
    let added = record(&db, ADDED_AT_START).await;
    assert_eq!(
        added
            .get_str("applied_by")
            .ok()
            .map(|by| by.ends_with(&format!(":{second_pid}"))),
        Some(true),
        "{added:?}"
    );

    // Release 1's migration ends: recorded once, by release 1; release 2's
    // task, queued behind it, finds it recorded.
    open_gate(&db, false).await;
    assert_eq!(first_lines.wait_for("done", deadline).as_deref(), Some("ok"));
    assert_eq!(second_lines.wait_for("done", deadline).as_deref(), Some("ok"));
    for child in [first, second] {
        let output = workers::finish(child, deadline);
        assert!(output.status.success(), "{}", workers::text(&output));
    }
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        [AT_START, BACKGROUND, ADDED_AT_START]
    );
    let background = record(&db, BACKGROUND).await;
    assert_eq!(
        background
            .get_str("applied_by")
            .ok()
            .map(|by| by.ends_with(&format!(":{first_pid}"))),
        Some(true),
        "{background:?}"
    );
    let mut seen = ran(&db).await;
    seen.sort();
    assert_eq!(
        seen,
        [
            AT_START,
            "bg_0002_backfill finished",
            "bg_0002_backfill started",
            ADDED_AT_START,
        ],
        "each ran once"
    );
    // Both locks let go.
    assert!(workers::lock_document(&db).await.is_none());
    assert!(workers::background_lock_document(&db).await.is_none());
}

async fn record(db: &Database, id: &str) -> Document {
    db.collection::<Document>("schema_versions")
        .find_one(doc! { "_id": id })
        .await
        .expect("read the record")
        .unwrap_or_else(|| panic!("{id} is recorded"))
}

#[tokio::test]
async fn a_background_failure_in_one_process_ends_another_process_s_wait() {
    let db = fresh_database("releases_failure").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut service = Worker::new(RELEASE_1, &db, 2000).spawn();
    let service_pid = service.id();
    let mut lines = Lines::of(&mut service);
    assert_eq!(lines.wait_for("ready", deadline).as_deref(), Some(BACKGROUND));
    until_ran(&db, "bg_0002_backfill started", deadline).await;

    // Another process waits, with a timeout far longer than the test.
    let waiting = Worker::new(RELEASE_1, &db, 2000).spawn_with(&["wait", "--timeout", "600"]);
    // Let it make its first look while the migration still runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    open_gate(&db, true).await;
    let failed_at = Instant::now();
    let waited = tokio::task::spawn_blocking(move || workers::finish(waiting, deadline))
        .await
        .expect("wait for `wait`");
    let took = failed_at.elapsed();
    let text = workers::text(&waited);
    assert_eq!(waited.status.code(), Some(1), "{text}");
    assert!(
        took < Duration::from_secs(15),
        "`wait` ended {took:?} after the failure: {text}"
    );
    let stderr = String::from_utf8_lossy(&waited.stderr);
    let headline = stderr.lines().next().unwrap_or_default();
    assert!(
        headline.contains(BACKGROUND) && headline.contains("migration_failed"),
        "{stderr}"
    );
    // The failing process saw it too, and noted it by its pid.
    assert_eq!(
        lines.wait_for("done", deadline).as_deref(),
        Some("background_failed")
    );
    let finished = workers::finish(service, deadline);
    assert_eq!(finished.status.code(), Some(1), "{}", workers::text(&finished));

    // A third process's status shows it, in text and JSON.
    let status = command(&db, &["status"], deadline).await;
    let text = workers::text(&status);
    assert!(
        text.contains(&format!(
            "background migration `{BACKGROUND}` failed (migration_failed), 1 in a row"
        )) && text.contains(&format!(":{service_pid}")),
        "{text}"
    );
    let status = command(&db, &["status", "--json"], deadline).await;
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let failed = &json["background"]["failed"];
    assert_eq!(failed["id"], BACKGROUND, "{json}");
    assert_eq!(failed["kind"], "migration_failed", "{json}");
    assert_eq!(failed["in_a_row"], 1, "{json}");
    // `wait --json` says it as an error of its own kind.
    let waited = command(&db, &["wait", "--timeout", "600", "--json"], deadline).await;
    assert_eq!(waited.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&waited.stdout).expect("JSON");
    assert_eq!(json["error"]["kind"], "background_failed", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains(BACKGROUND)),
        "{json}"
    );
    assert_eq!(record_ids(&db, "schema_versions").await, [AT_START]);
}
