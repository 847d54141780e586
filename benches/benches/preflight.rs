//! `SchemaManager::preflight` against the server in `MONGODB_URI`: wall
//! time and commands for the example application's set on a new database
//! (the scratch run dominates: no collection exists to probe), and for a
//! collection of many documents (100,000 unless `PREFLIGHT_DOCUMENTS` says
//! otherwise) that a pending migration gives a unique index and a
//! validator, with a few duplicates and a few documents the validator
//! refuses.
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench preflight`
//! (`BENCH_RUNS` sets the number of timed runs, 5 by default.)

use std::time::{Duration, Instant};

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::preflight::PreflightReport;
use schema_core::{Error, Migrations, SchemaManager, Validator, migration, set_validator};
use schema_tests::{SentCommands, monitored_database, take_commands};

// Linking the example registers its migrations (the default group).
use example_app as _;

fn documents() -> i64 {
    std::env::var("PREFLIGHT_DOCUMENTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(100_000)
}

/// Items are unique by sku and never have a negative quantity
#[migration(id = "pb_0001_items", group = "preflight_bench")]
async fn items(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "items", [ascending("sku").unique()]).await?;
    let schema = doc! {
        "bsonType": "object",
        "required": ["sku", "qty"],
        "properties": { "qty": { "bsonType": ["int", "long"], "minimum": 0 } },
    };
    set_validator(db, "items", Validator::new(schema)).await
}

async fn measure(name: &str, manager: &SchemaManager, sent: &SentCommands, runs: usize) {
    take_commands(sent);
    let report = manager.preflight().await.expect("preflight");
    let commands = take_commands(sent);
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        manager.preflight().await.expect("preflight");
        times.push(started.elapsed());
    }
    println!(
        "{name}: {} pending, {} commands, {}",
        report.pending.len(),
        commands.len(),
        findings(&report)
    );
    schema_benches::print_times(name, 24, times);
}

/// Each finding as `code count`, then the inconclusive probes.
fn findings(report: &PreflightReport) -> String {
    let mut shown: Vec<String> = report
        .findings
        .iter()
        .map(|finding| format!("{} {}", finding.code, finding.count))
        .collect();
    shown.extend(
        report
            .inconclusive
            .iter()
            .map(|probe| format!("{} inconclusive: {}", probe.code, probe.reason)),
    );
    if shown.is_empty() {
        "no finding".to_owned()
    } else {
        shown.join("; ")
    }
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("preflight");
    let runs = schema_benches::runs(5);

    let (db, sent) = monitored_database("bench_preflight_example").await;
    measure(
        "example, new database",
        &SchemaManager::new(db.clone()),
        &sent,
        runs,
    )
    .await;
    db.drop().await.expect("drop");

    let (db, sent) = monitored_database("bench_preflight_items").await;
    let count = documents();
    let items = db.collection::<Document>("items");
    let batch: i64 = 10_000;
    for start in (0..count).step_by(batch as usize) {
        let end = (start + batch).min(count);
        let documents = (start..end).map(|n| {
            // One in 10,000 shares its sku with the next; one in 5,000 has
            // a negative quantity.
            let sku = if n % 10_000 == 1 { n - 1 } else { n };
            let qty = if n % 5_000 == 7 { -1 } else { n % 100 };
            doc! { "sku": sku, "qty": qty, "name": format!("item {n}") }
        });
        items.insert_many(documents).await.expect("insert");
    }
    let manager = SchemaManager::new(db.clone())
        .migrations(Migrations::group("preflight_bench").expect("a valid group"));
    measure(&format!("{count} documents"), &manager, &sent, runs).await;
    db.drop().await.expect("drop");
}
