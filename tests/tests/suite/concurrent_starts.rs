//! Many processes starting at once, and a process killed while holding the
//! lock. These run real OS processes of the `apply-worker` binary against
//! one database on the local test server; each is bounded in time and
//! killed if it overruns. The faults beyond these are in `lease_faults.rs`.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use schema_tests::proxy::FaultProxy;
use schema_tests::workers::{
    Gate, MIGRATIONS, Worker, counter, create_counters, finish, line, lock_document, process_of,
    refused_lock_inserts, text, wait_until_running,
};
use schema_tests::{documents, fresh_database, record_ids};

const PROCESSES: usize = 8;
const DEADLINE: Duration = Duration::from_secs(120);
const WORKER: &str = env!("CARGO_BIN_EXE_apply-worker");

/// Eight processes start at once through one proxy, which records what
/// the server answered each. The one that takes the lock is held inside
/// `c_0003_slow` (a gate) until every other process has met its lock: the
/// server refused each one's insert of the lock with a duplicate key. Only
/// then does it go on, and each migration still runs and is recorded once.
#[tokio::test(flavor = "multi_thread")]
async fn processes_starting_at_once_apply_each_migration_exactly_once() {
    let db = fresh_database("concurrent_starts").await;
    create_counters(&db).await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let gate = Gate::new("concurrent_starts");

    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            Worker::new(WORKER, &db, 5_000)
                .through(&proxy.uri())
                .gated(&gate)
                .spawn()
        })
        .collect();
    let deadline = Instant::now() + DEADLINE;

    // The contention: one holds the lock in the middle of its run, and
    // every other process found the lock held and waits.
    let holder = loop {
        let lock = lock_document(&db).await;
        let running = lock.as_ref().and_then(|lock| lock.get_str("running").ok());
        if running == Some("c_0003_slow") && counter(&db, "c_0003_slow").await >= 1 {
            break lock
                .and_then(|lock| lock.get_str("owner").ok().map(str::to_owned))
                .expect("the holder's owner id");
        }
        assert!(Instant::now() < deadline, "a process reached c_0003_slow in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let waiters = loop {
        let refused = refused_lock_inserts(&proxy);
        if refused.len() >= PROCESSES - 1 {
            break refused;
        }
        assert!(
            Instant::now() < deadline,
            "every other process met the lock in time: {refused:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !waiters.iter().any(|waiter| waiter == process_of(&holder)),
        "seven processes other than the holder {holder} were refused: {waiters:?}"
    );
    assert_eq!(
        lock_document(&db)
            .await
            .and_then(|lock| lock.get_str("owner").ok().map(str::to_owned)),
        Some(holder.clone()),
        "still held by the first while the others waited"
    );
    assert_eq!(
        counter(&db, "c_0004").await,
        0,
        "the holder had not finished when the others met its lock"
    );
    gate.open();

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
