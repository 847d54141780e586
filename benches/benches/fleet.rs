//! Fleets against the server in `MONGODB_URI`: `BENCH_TENANTS` tenant
//! databases (1,000 by default) migrated with `schema_core::fleet`.
//!
//! - `Fleet::apply` of three migrations over new tenants at concurrency 1,
//!   4 and 16, each over a fleet of its own: commands sent, wall time, the
//!   most connections the client held open at once and the process's peak
//!   resident memory.
//! - Over the last of those fleets, now up to date: `Fleet::status` and a
//!   no-op `Fleet::apply` (tenants listed by prefix) at concurrency 1 and
//!   16, and what users do today, a loop that starts one process per
//!   tenant (this binary again, applying to one database and exiting).
//!
//! `scripts/with-mongodb cargo bench -p schema-benches --bench fleet`
//! (`BENCH_TENANTS` sets the fleet's size; `BENCH_REVERSE=1` runs the
//! applies from the highest concurrency down.)

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use schema_core::fleet::{Fleet, FleetReport, Selection};
use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::event::EventHandler;
use schema_core::mongodb::event::cmap::CmapEvent;
use schema_core::mongodb::event::command::CommandEvent;
use schema_core::mongodb::options::{ClientOptions, IndexOptions};
use schema_core::mongodb::{Client, Database, IndexModel};
use schema_core::{Migrations, SchemaManager, migration};

/// The group of the bench's three migrations.
const GROUP: &str = "bench_fleet";

/// Set in the child processes of the loop: the one database to migrate.
const TENANT_VARIABLE: &str = "BENCH_FLEET_TENANT";

/// Accounts by tenant
#[migration(id = "bf_0001_accounts", group = "bench_fleet")]
async fn accounts(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    let index = IndexModel::builder()
        .keys(doc! { "owner": 1, "created": 1 })
        .build();
    db.collection::<Document>("accounts").create_index(index).await?;
    Ok(())
}

/// Unique emails
#[migration(id = "bf_0002_emails", group = "bench_fleet", after = "bf_0001_accounts")]
async fn emails(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    let index = IndexModel::builder()
        .keys(doc! { "email": 1 })
        .options(IndexOptions::builder().unique(true).build())
        .build();
    db.collection::<Document>("accounts").create_index(index).await?;
    Ok(())
}

/// Sessions expire
#[migration(id = "bf_0003_sessions_ttl", group = "bench_fleet", after = "bf_0002_emails")]
async fn sessions_ttl(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    let index = IndexModel::builder()
        .keys(doc! { "last_seen": 1 })
        .options(
            IndexOptions::builder()
                .expire_after(Duration::from_secs(30 * 24 * 3600))
                .build(),
        )
        .build();
    db.collection::<Document>("sessions").create_index(index).await?;
    Ok(())
}

/// What the client saw: every command by name, and its connections.
#[derive(Default)]
struct Seen {
    commands: std::sync::Mutex<BTreeMap<String, usize>>,
    open: AtomicUsize,
    most_open: AtomicUsize,
}

impl Seen {
    /// Forgets the commands, and counts the most connections from those
    /// open now.
    fn reset(&self) -> BTreeMap<String, usize> {
        self.most_open
            .store(self.open.load(Ordering::SeqCst), Ordering::SeqCst);
        std::mem::take(&mut *self.commands.lock().expect("not poisoned"))
    }
}

/// A client on `MONGODB_URI` whose commands and connections `seen` notes,
/// with the driver's pool size (10) unless `pool` says otherwise.
async fn monitored_client(pool: Option<u32>) -> (Client, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let mut options = ClientOptions::parse(schema_tests::uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    options.max_pool_size = pool.or(options.max_pool_size);
    let noted = Arc::clone(&seen);
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event {
            *noted
                .commands
                .lock()
                .expect("not poisoned")
                .entry(started.command_name)
                .or_default() += 1;
        }
    }));
    let noted = Arc::clone(&seen);
    options.cmap_event_handler = Some(EventHandler::callback(move |event: CmapEvent| match event {
        CmapEvent::ConnectionCreated(_) => {
            let open = noted.open.fetch_add(1, Ordering::SeqCst) + 1;
            noted.most_open.fetch_max(open, Ordering::SeqCst);
        }
        CmapEvent::ConnectionClosed(_) => {
            noted.open.fetch_sub(1, Ordering::SeqCst);
        }
        _ => {}
    }));
    (Client::with_options(options).expect("a client"), seen)
}

fn manager(client: &Client, name: &str) -> SchemaManager {
    SchemaManager::new(client.database(name)).migrations(Migrations::group(GROUP).expect("a valid group"))
}

/// The process's peak resident memory in MiB since the last
/// [`reset_peak_memory`] (`VmHWM`; Linux only, else `None`).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Starts the peak resident memory again from the current one.
fn reset_peak_memory() {
    // Writing 5 to clear_refs resets VmHWM (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn commands_line(commands: &BTreeMap<String, usize>) -> String {
    let total: usize = commands.values().sum();
    let each: Vec<String> = commands
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    format!("{total} ({})", each.join(", "))
}

fn line(what: &str, elapsed: Duration, tenants: usize, seen: &Seen, report: &FleetReport) {
    let commands = seen.reset();
    let memory = peak_memory_mib().map_or("?".to_owned(), |mib| format!("{mib:.1}"));
    println!(
        "{what:<42} {:>9.2} s  {:>7.2} ms/tenant  connections {:>3}  peak RSS {memory} MiB  \
         outcomes: {} applied, {} up to date, {} behind, {} failed  commands {}",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / tenants as f64,
        seen.most_open.load(Ordering::SeqCst),
        report.summary.applied,
        report.summary.up_to_date,
        report.summary.behind,
        report.summary.failed,
        commands_line(&commands),
    );
}

/// The child of the loop: applies the group to one database, as a service
/// does at start, and exits.
async fn child(tenant: &str) {
    let client = Client::with_uri_str(schema_tests::uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    manager(&client, tenant)
        .apply_all()
        .await
        .expect("the tenant's apply");
    client.shutdown().await;
}

#[tokio::main]
async fn main() {
    schema_benches::require_server("fleet");
    if let Some(tenant) = std::env::var_os(TENANT_VARIABLE) {
        child(&tenant.to_string_lossy()).await;
        return;
    }
    let count: usize = std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1000);

    // A short name unique to this run: the fleets' prefixes start with it.
    let base = format!("bf{}", std::process::id());
    let fleet_prefix = |concurrency: usize, pool: Option<u32>| match pool {
        Some(size) => format!("{base}c{concurrency}p{size}_"),
        None => format!("{base}c{concurrency}_"),
    };
    let manager_database = format!("{base}_manager");

    println!("{count} tenants, three migrations each");
    let mut runs = vec![(1, None), (4, None), (16, None), (16, Some(16))];
    // The server may slow as it fills with databases: `BENCH_REVERSE=1`
    // runs the applies in the other order, to tell that from concurrency.
    if std::env::var_os("BENCH_REVERSE").is_some() {
        runs.reverse();
    }
    // Each run on a client of its own, so that its connections are its own.
    for &(concurrency, pool) in &runs {
        let (client, seen) = monitored_client(pool).await;
        let prefix = fleet_prefix(concurrency, pool);
        let names: Vec<String> = (0..count).map(|n| format!("{prefix}{n:05}")).collect();
        let fleet = Fleet::new(manager(&client, &manager_database), Selection::databases(names))
            .concurrency(concurrency);
        seen.reset();
        reset_peak_memory();
        let started = Instant::now();
        let report = fleet.apply().await.expect("the fleet's apply");
        let elapsed = started.elapsed();
        assert_eq!(report.summary.applied, count, "every new tenant applied");
        let pool = pool.map_or(String::new(), |size| format!(", pool {size}"));
        line(
            &format!("apply, new tenants, concurrency {concurrency}{pool}"),
            elapsed,
            count,
            &seen,
            &report,
        );
        client.shutdown().await;
    }

    // The fleet of the last apply, up to date, listed by its prefix.
    let prefix = fleet_prefix(16, None);
    for (concurrency, pool) in [(1, None), (16, None), (16, Some(16))] {
        let (client, seen) = monitored_client(pool).await;
        let fleet = Fleet::new(manager(&client, &manager_database), Selection::prefix(&prefix))
            .concurrency(concurrency);
        seen.reset();
        reset_peak_memory();
        let started = Instant::now();
        let report = fleet.status().await.expect("the fleet's status");
        let elapsed = started.elapsed();
        assert_eq!(report.summary.up_to_date, count, "every tenant up to date");
        let pool = pool.map_or(String::new(), |size| format!(", pool {size}"));
        line(
            &format!("status, concurrency {concurrency}{pool}"),
            elapsed,
            count,
            &seen,
            &report,
        );

        seen.reset();
        reset_peak_memory();
        let started = Instant::now();
        let report = fleet.apply().await.expect("the fleet's no-op apply");
        let elapsed = started.elapsed();
        assert_eq!(report.summary.up_to_date, count, "every tenant up to date");
        line(
            &format!("no-op apply, concurrency {concurrency}{pool}"),
            elapsed,
            count,
            &seen,
            &report,
        );
        client.shutdown().await;
    }

    // What users do today: one process per tenant, one after another.
    let program = std::env::current_exe().expect("this benchmark's path");
    let started = Instant::now();
    for n in 0..count {
        let status = Command::new(&program)
            .env(TENANT_VARIABLE, format!("{prefix}{n:05}"))
            .status()
            .expect("the tenant's process starts");
        assert!(status.success(), "the tenant's process ends well");
    }
    let elapsed = started.elapsed();
    println!(
        "{:<42} {:>9.2} s  {:>7.2} ms/tenant",
        "no-op, one process per tenant",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / count as f64,
    );

    let client = Client::with_uri_str(schema_tests::uri())
        .await
        .expect("MONGODB_URI is a valid URI");
    let all: Vec<String> = runs
        .iter()
        .flat_map(|&(concurrency, pool)| {
            let prefix = fleet_prefix(concurrency, pool);
            (0..count).map(move |n| format!("{prefix}{n:05}"))
        })
        .collect();
    for name in all {
        let _ = client.database(&name).drop().await;
    }
    client.shutdown().await;
}
