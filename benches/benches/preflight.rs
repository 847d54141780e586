//! `SchemaManager::preflight` against the server in `MONGODB_URI`: wall
//! time, commands, and the time of each probe's command on the server, for
//!
//! - the example application's set on a new database (the scratch run is
//!   all there is: no collection exists to probe);
//! - the same set over an event store of many documents (100,000 unless
//!   `PREFLIGHT_DOCUMENTS` says otherwise) written before the migrations:
//!   a unique index, a TTL index, a validator and a backfill to probe;
//! - a collection of as many documents that a pending migration gives a
//!   unique index and a strict validator, with a few duplicates and a few
//!   documents the validator refuses.
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench preflight`
//! (`BENCH_RUNS` sets the number of timed runs, 5 by default.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes};
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::mongodb::event::EventHandler;
use schema_core::mongodb::event::command::CommandEvent;
use schema_core::mongodb::options::ClientOptions;
use schema_core::mongodb::{Client, Database};
use schema_core::preflight::PreflightReport;
use schema_core::{Error, Migrations, SchemaManager, Validator, migration, set_validator};

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

/// What the server took for each command sent to the benchmark's
/// database, by what the command is: the probe it serves, or the rest.
#[derive(Clone, Default)]
struct Timings {
    started: Arc<Mutex<HashMap<i32, String>>>,
    took: Arc<Mutex<Vec<(String, Duration)>>>,
}

impl Timings {
    fn take(&self) -> Vec<(String, Duration)> {
        std::mem::take(&mut *self.took.lock().expect("not poisoned"))
    }
}

/// A probe's command by its shape: the unique probe's `$group`, a count's
/// `$match` then `$group`, `explain`, `$indexStats`; anything else by name.
fn kind(command: &Document) -> String {
    let name = command.keys().next().cloned().unwrap_or_default();
    let pipeline = command.get_array("pipeline").map(|stages| format!("{stages:?}"));
    match (name.as_str(), pipeline) {
        ("aggregate", Ok(stages)) if stages.contains("$unwind") => "unique_duplicates aggregate".into(),
        ("aggregate", Ok(stages)) if stages.contains("$nor") => "validator_rejects count".into(),
        ("aggregate", Ok(stages)) if stages.contains("$type") => "ttl_not_dates count".into(),
        ("aggregate", Ok(stages)) if stages.contains("$lt") => "ttl_deletes count".into(),
        ("aggregate", Ok(stages)) if stages.contains("$indexStats") => "index_in_use $indexStats".into(),
        ("explain", _) => "collection_scan explain".into(),
        (other, _) => other.to_owned(),
    }
}

/// A client whose commands to `database` are timed into `timings`.
async fn timed_client(database: &str, timings: &Timings) -> Client {
    let mut options = ClientOptions::parse(std::env::var("MONGODB_URI").expect("MONGODB_URI"))
        .await
        .expect("a valid URI");
    let (name, noted) = (database.to_owned(), timings.clone());
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| match event {
        CommandEvent::Started(started) if started.db == name => {
            let kind = kind(&started.command);
            noted
                .started
                .lock()
                .expect("not poisoned")
                .insert(started.request_id, kind);
        }
        CommandEvent::Succeeded(done) => {
            if let Some(kind) = noted
                .started
                .lock()
                .expect("not poisoned")
                .remove(&done.request_id)
            {
                noted
                    .took
                    .lock()
                    .expect("not poisoned")
                    .push((kind, done.duration));
            }
        }
        CommandEvent::Failed(failed) => {
            noted
                .started
                .lock()
                .expect("not poisoned")
                .remove(&failed.request_id);
        }
        _ => {}
    }));
    Client::with_options(options).expect("a client")
}

async fn measure(name: &str, manager: &SchemaManager, timings: &Timings, runs: usize) {
    timings.take();
    let report = manager.preflight().await.expect("preflight");
    let mut probes: Vec<(String, Duration)> = timings
        .take()
        .into_iter()
        .filter(|(kind, _)| kind.contains(' '))
        .collect();
    probes.sort();
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        manager.preflight().await.expect("preflight");
        times.push(started.elapsed());
    }
    println!("{name}: {} pending; {}", report.pending.len(), findings(&report));
    for (kind, took) in &probes {
        println!(
            "    {kind:<32} {:>9.1} ms on the server",
            took.as_secs_f64() * 1000.0
        );
    }
    schema_benches::print_times(name, 28, times);
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
            .map(|probe| format!("{} inconclusive", probe.code)),
    );
    if shown.is_empty() {
        "no finding".to_owned()
    } else {
        shown.join(", ")
    }
}

/// Writes `count` documents made by `document` into `collection`, in
/// batches.
async fn fill(db: &Database, collection: &str, count: i64, document: impl Fn(i64) -> Document) {
    let collection = db.collection::<Document>(collection);
    let batch: i64 = 10_000;
    for start in (0..count).step_by(batch as usize) {
        let end = (start + batch).min(count);
        collection
            .insert_many((start..end).map(&document))
            .await
            .expect("insert");
    }
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("preflight");
    let runs = schema_benches::runs(5);
    let count = documents();
    let timings = Timings::default();

    let name = schema_tests::fresh_database("bench_preflight_new")
        .await
        .name()
        .to_owned();
    let db = timed_client(&name, &timings).await.database(&name);
    measure(
        "example, new database",
        &SchemaManager::new(db.clone()),
        &timings,
        runs,
    )
    .await;
    db.drop().await.expect("drop");

    let name = schema_tests::fresh_database("bench_preflight_events")
        .await
        .name()
        .to_owned();
    let db = timed_client(&name, &timings).await.database(&name);
    let now = DateTime::now().timestamp_millis();
    fill(&db, "events", count, |n| {
        // One in 10,000 shares its id with the one before; one in 1,000
        // expired a day ago.
        let id = if n % 10_000 == 1 { n - 1 } else { n };
        let expires = if n % 1_000 == 3 {
            now - 86_400_000
        } else {
            now + 86_400_000
        };
        doc! {
            "event_id": format!("e{id:08}"),
            "event_type": "order.created",
            "timestamp": DateTime::from_millis(now),
            "ttl_expires_at": DateTime::from_millis(expires),
            "payload": { "message": "created" },
        }
    })
    .await;
    measure(
        &format!("example, {count} events"),
        &SchemaManager::new(db.clone()),
        &timings,
        runs,
    )
    .await;
    db.drop().await.expect("drop");

    let name = schema_tests::fresh_database("bench_preflight_items")
        .await
        .name()
        .to_owned();
    let db = timed_client(&name, &timings).await.database(&name);
    fill(&db, "items", count, |n| {
        // One in 10,000 shares its sku with the one before; one in 5,000
        // has a negative quantity.
        let sku = if n % 10_000 == 1 { n - 1 } else { n };
        let qty = if n % 5_000 == 7 { -1 } else { n % 100 };
        doc! { "sku": sku, "qty": qty, "name": format!("item {n}") }
    })
    .await;
    let manager = SchemaManager::new(db.clone())
        .migrations(Migrations::group("preflight_bench").expect("a valid group"));
    measure(&format!("{count} items"), &manager, &timings, runs).await;
    db.drop().await.expect("drop");
}
