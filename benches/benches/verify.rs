//! `SchemaManager::verify` against the server in `MONGODB_URI`: commands
//! sent and wall time for the example's schema, and for a synthetic one of
//! many collections (1,000 unless `VERIFY_COLLECTIONS` says otherwise), each
//! with two indexes. Also the time to take the synthetic snapshot, which
//! applies the whole set to a scratch database.
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench verify`
//! (`BENCH_RUNS` sets the number of timed runs of `verify`, 10 by default.)

use std::time::{Duration, Instant};

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{monitored_database, take_commands};

// Linking the example registers its ten migrations (the default group).
use example_app as _;

fn collections() -> usize {
    std::env::var("VERIFY_COLLECTIONS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1_000)
}

/// Many collections, each with a unique index and a compound one
#[migration(id = "v_0001_many_collections", group = "verify_bench")]
async fn many_collections(db: &Database) -> Result<(), Error> {
    for n in 0..collections() {
        let indexes = [ascending("key").unique(), keys(doc! { "tenant": 1, "at": 1 })];
        ensure_indexes(db, &format!("c_{n:05}"), indexes).await?;
    }
    Ok(())
}

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort_unstable();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

async fn measure(name: &str, manager: &SchemaManager, sent: &schema_tests::SentCommands, runs: usize) {
    let started = Instant::now();
    let snapshot = manager.snapshot().await.expect("snapshot");
    let snapshot_ms = started.elapsed().as_secs_f64() * 1000.0;
    manager.apply_all().await.expect("apply");
    take_commands(sent);
    let drift = manager.verify(&snapshot).await.expect("verify");
    let commands = take_commands(sent);
    let listings = commands
        .iter()
        .filter(|(name, _)| name.starts_with("list"))
        .count();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        manager.verify(&snapshot).await.expect("verify");
        times.push(started.elapsed());
    }
    println!(
        "{name}: {} collections declared, verify sends {} commands ({listings} listings), \
         drift entries {}, median {:.1} ms over {runs} runs; snapshot {:.0} ms",
        snapshot.collections().len(),
        commands.len(),
        drift.missing.len() + drift.extra.len() + drift.changed.len(),
        median(times),
        snapshot_ms,
    );
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("verify");
    let runs = schema_benches::runs(10);

    let (db, sent) = monitored_database("bench_verify_example").await;
    measure("example", &SchemaManager::new(db.clone()), &sent, runs).await;
    db.drop().await.expect("drop");

    let (db, sent) = monitored_database("bench_verify_many").await;
    let manager =
        SchemaManager::new(db.clone()).migrations(Migrations::group("verify_bench").expect("a valid set"));
    measure("synthetic", &manager, &sent, runs).await;
    db.drop().await.expect("drop");
}
