//! Many processes starting at once, and a process killed while holding the
//! lock. These run real OS processes of the `apply-worker` binary against
//! one database on the local test server; each is bounded in time and
//! killed if it overruns. The faults beyond these are in `lease_faults.rs`.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use schema_tests::workers::{
    MIGRATIONS, Worker, counter, create_counters, finish, line, overlapping, runs, text, wait_until_running,
};
use schema_tests::{documents, fresh_database, record_ids};

const PROCESSES: usize = 8;
const DEADLINE: Duration = Duration::from_secs(120);
const WORKER: &str = env!("CARGO_BIN_EXE_apply-worker");

#[tokio::test(flavor = "multi_thread")]
async fn processes_starting_at_once_apply_each_migration_exactly_once() {
    let db = fresh_database("concurrent_starts").await;
    create_counters(&db).await;

    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| Worker::new(WORKER, &db, 5_000).spawn())
        .collect();
    let deadline = Instant::now() + DEADLINE;
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| finish(child, deadline))
        .collect();

    let mut applied_by_all = Vec::new();
    for output in &outputs {
        assert!(
            output.status.success(),
            "every process succeeds: {}",
            text(output)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let applied = line(&stdout, "applied").expect("the worker reports what it applied");
        applied_by_all.extend(applied.split(',').filter(|id| !id.is_empty()).map(str::to_owned));
    }
    applied_by_all.sort();
    assert_eq!(
        applied_by_all, MIGRATIONS,
        "each migration applied by exactly one process"
    );
    for id in MIGRATIONS {
        assert_eq!(counter(&db, id).await, 1, "{id} ran exactly once");
        assert!(!overlapping(&runs(&db, id).await, &[]));
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
    let mut stalled = Worker::new(WORKER, &db, 1_000)
        .env("WORKER_SLOW_MS", 120_000)
        .spawn();
    wait_until_running(&db, &mut stalled, "c_0003_slow", Instant::now() + DEADLINE).await;
    stalled.kill().expect("SIGKILL the lock holder");
    stalled.wait().unwrap();

    let output = finish(Worker::new(WORKER, &db, 1_000).spawn(), Instant::now() + DEADLINE);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(line(&stdout, "applied"), Some("c_0003_slow,c_0004"));
    assert!(
        stdout.contains("interrupted=c_0003_slow "),
        "the interrupted migration is named: {stdout}"
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
