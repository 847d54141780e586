//! Many processes starting at once, and a process killed while holding the
//! lock. These run real OS processes of the `apply-worker` binary against
//! one database on the local test server; each is bounded in time and
//! killed if it overruns.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_tests::{documents, fresh_database, record_ids};

const MIGRATIONS: [&str; 4] = ["c_0001", "c_0002", "c_0003_slow", "c_0004"];
const PROCESSES: usize = 8;
const DEADLINE: Duration = Duration::from_secs(120);

fn worker(db: &Database, lease_ms: u64, slow_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_apply-worker"))
        .env("MONGODB_URI", schema_tests::uri())
        .env("WORKER_DB", db.name())
        .env("WORKER_LEASE_MS", lease_ms.to_string())
        .env("WORKER_SLOW_MS", slow_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start apply-worker")
}

/// Waits for `child`, killing it if it runs past the deadline.
fn finish(mut child: Child, deadline: Instant) -> Output {
    while child.try_wait().expect("poll the worker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the worker's output")
}

async fn create_counters(db: &Database) {
    let counters: Vec<Document> = MIGRATIONS.iter().map(|id| doc! { "_id": *id, "n": 0 }).collect();
    db.collection::<Document>("counters")
        .insert_many(counters)
        .await
        .unwrap();
}

async fn counter(db: &Database, id: &str) -> i64 {
    let document = db
        .collection::<Document>("counters")
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .expect("counter exists");
    match document.get("n") {
        Some(schema_core::mongodb::bson::Bson::Int32(n)) => i64::from(*n),
        Some(schema_core::mongodb::bson::Bson::Int64(n)) => *n,
        other => panic!("counter {id} is {other:?}"),
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_starting_at_once_apply_each_migration_exactly_once() {
    let db = fresh_database("concurrent_starts").await;
    create_counters(&db).await;

    let children: Vec<Child> = (0..PROCESSES).map(|_| worker(&db, 5_000, 0)).collect();
    let deadline = Instant::now() + DEADLINE;
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| finish(child, deadline))
        .collect();

    let mut applied_by_all = Vec::new();
    for output in &outputs {
        assert!(
            output.status.success(),
            "every process succeeds: {:?}\n{}{}",
            output.status,
            stdout(output),
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout(output);
        let applied = line
            .lines()
            .find_map(|line| line.strip_prefix("applied="))
            .expect("the worker reports what it applied");
        applied_by_all.extend(applied.split(',').filter(|id| !id.is_empty()).map(str::to_owned));
    }
    applied_by_all.sort();
    assert_eq!(
        applied_by_all, MIGRATIONS,
        "each migration applied by exactly one process"
    );
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran exactly once");
    }
    assert_eq!(record_ids(&db, "schema_versions").await, MIGRATIONS);
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "the lock was released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_killed_while_holding_the_lock_is_taken_over_after_its_lease() {
    let db = fresh_database("killed_holder").await;
    create_counters(&db).await;

    // The first process stalls inside c_0003_slow with a one-second lease.
    let mut stalled = worker(&db, 1_000, 120_000);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lock = db
            .collection::<Document>("schema_lock")
            .find_one(doc! { "_id": "schema_versions" })
            .await
            .unwrap();
        let running = lock.as_ref().and_then(|lock| lock.get_str("running").ok());
        if running == Some("c_0003_slow") && counter(&db, "c_0003_slow").await == 1 {
            break;
        }
        assert!(
            stalled.try_wait().unwrap().is_none(),
            "the stalled process is still running"
        );
        assert!(
            Instant::now() < deadline,
            "the first process reached c_0003_slow in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stalled.kill().expect("SIGKILL the lock holder");
    stalled.wait().unwrap();

    let output = finish(worker(&db, 1_000, 0), Instant::now() + DEADLINE);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("applied=c_0003_slow,c_0004"), "{text}");
    assert!(
        text.contains("interrupted=c_0003_slow "),
        "the interrupted migration is named: {text}"
    );
    assert_eq!(counter(&db, "c_0001").await, 1);
    assert_eq!(counter(&db, "c_0002").await, 1);
    assert_eq!(
        counter(&db, "c_0003_slow").await,
        2,
        "the interrupted migration ran again"
    );
    assert_eq!(counter(&db, "c_0004").await, 1);
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        MIGRATIONS,
        "each recorded once"
    );
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "the lock was released"
    );
}
