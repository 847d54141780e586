//! The startup path with the example's eleven migrations, against the
//! server in `MONGODB_URI`: commands sent and wall time of a full apply on
//! an empty database and of a start with nothing to do (median of repeated
//! runs, each on a fresh database for the full apply). The full apply is
//! timed three ways: to ready (`apply_all` returns, the background
//! migration left to its task), to everything recorded (then
//! `wait_applied`), and with everything at start (`wait_for_background`).
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench startup`
//! (`BENCH_RUNS` sets the number of runs, 25 by default.)

use std::time::{Duration, Instant};

use schema_core::SchemaManager;
use schema_tests::{fresh_database, monitored_database, take_commands};

// Linking the example registers its eleven migrations.
use example_app as _;

fn summary(name: &str, times: Vec<Duration>) {
    schema_benches::print_times(name, 28, times);
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("startup");
    let runs = schema_benches::runs(25);

    // Commands, counted once.
    let (db, sent) = monitored_database("bench_commands").await;
    SchemaManager::new(db.clone())
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("full apply");
    let full = take_commands(&sent);
    let count = schema_core::Migrations::default_group()
        .expect("a valid set")
        .len();
    SchemaManager::new(db.clone())
        .apply_all()
        .await
        .expect("no-op start");
    let noop = take_commands(&sent);
    println!(
        "commands, full apply of {count} on an empty database: {}",
        full.len()
    );
    println!("commands, start with nothing to do:             {}", noop.len());

    // Wall time of a full apply, each on a fresh database.
    let (mut ready, mut recorded, mut at_start) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let db = fresh_database("bench_full").await;
        let manager = SchemaManager::new(db);
        let started = Instant::now();
        manager.apply_all().await.expect("full apply");
        ready.push(started.elapsed());
        manager
            .wait_applied(Duration::from_secs(60))
            .await
            .expect("the background migration");
        recorded.push(started.elapsed());

        let db = fresh_database("bench_full_at_start").await;
        let manager = SchemaManager::new(db).wait_for_background(true);
        let started = Instant::now();
        manager.apply_all().await.expect("full apply");
        at_start.push(started.elapsed());
    }
    summary(&format!("full apply ({count}), ready"), ready);
    summary(&format!("full apply ({count}), recorded"), recorded);
    summary(&format!("full apply ({count}), at start"), at_start);

    // Wall time of a start with nothing to do, on a warm connection.
    let db = fresh_database("bench_noop").await;
    let manager = SchemaManager::new(db);
    manager
        .clone()
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("apply once");
    let mut times = Vec::with_capacity(runs * 4);
    for _ in 0..runs * 4 {
        let started = Instant::now();
        let report = manager.apply_all().await.expect("no-op start");
        times.push(started.elapsed());
        assert!(report.applied.is_empty());
    }
    summary("no-op start", times);
}
