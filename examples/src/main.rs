//! Starts like every process of the application: connect, bring the schema
//! up to date, then (in a real process) go on to serve while the
//! background migration builds its index.
//!
//! With arguments, it is the schema command line instead:
//! `example-app status`, `plan`, `apply`, `wait --timeout <seconds>`,
//! `forget <id>`, `mark-applied <id>`,
//! `snapshot [--out FILE]`, `verify --snapshot schema.json`, `preflight`,
//! `plan --commands`,
//! each with `--json`.
//!
//! The server is `MONGODB_URI`, else a MongoDB on the default local port;
//! the database is the URI's path when it names one, else `app`. Logs go to
//! stderr; `RUST_LOG=schema_core=info` shows each migration's span.

use std::process::ExitCode;

// Linking the library registers the application's migrations.
use example_app as _;

const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017";
const DEFAULT_DATABASE: &str = "app";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| DEFAULT_URI.to_owned());
    let outcome = if std::env::args_os().len() > 1 {
        command_line(&uri).await
    } else {
        start(&uri).await.map(|()| ExitCode::SUCCESS)
    };
    match outcome {
        Ok(code) => code,
        // One line, as the command line prints its errors.
        Err(error) => schema_core::cli::fail(&error),
    }
}

/// The schema command line, on the same database as a start.
async fn command_line(uri: &str) -> Result<ExitCode, schema_core::Error> {
    let connection = schema_core::connect(uri, DEFAULT_DATABASE).await?;
    let code = schema_core::cli::run(connection.manager()).await;
    connection.shutdown().await;
    Ok(code)
}

async fn start(uri: &str) -> Result<(), schema_core::Error> {
    let connection = schema_core::connect(uri, DEFAULT_DATABASE).await?;
    println!(
        "bringing the schema of `{}` on {} up to date",
        connection.database().name(),
        schema_core::redact(uri)
    );
    let started = std::time::Instant::now();
    let manager = connection.manager();
    let report = match manager.apply_all().await {
        Ok(report) => report,
        Err(error) => {
            connection.shutdown().await;
            return Err(error);
        }
    };
    // Here a service would start serving; its background migrations go on
    // in a task of this process.
    let ready = started.elapsed();
    println!("ready after {} ms", ready.as_millis());
    if !report.background.is_empty() {
        println!(
            "serving while background migrations run: {}",
            report.background.join(", ")
        );
    }
    // An example ends, so it waits for them; a service would go on serving
    // (and tell readiness probes for a feature with `is_applied`).
    let waited = manager.wait_applied(std::time::Duration::from_secs(600)).await;
    if !report.background.is_empty() && waited.is_ok() {
        println!(
            "background migrations recorded after {} ms",
            started.elapsed().as_millis()
        );
    }
    // Close the connections while the runtime still runs, instead of
    // leaving it to the client's drop at exit.
    connection.shutdown().await;
    waited?;
    // The set the manager applied: the default group, in apply order.
    let migrations = schema_core::Migrations::default_group()?;
    let width = migrations
        .iter()
        .map(|migration| migration.id().len())
        .max()
        .unwrap_or(0);
    for migration in &migrations {
        let id = migration.id();
        let state = if report.applied.iter().any(|applied| applied == id) {
            "applied"
        } else if report.background.iter().any(|left| left == id) {
            "in background"
        } else {
            "already applied"
        };
        let took = report.durations.get(id).map_or_else(
            || "-".to_owned(),
            |duration| format!("{} ms", duration.as_millis()),
        );
        println!(
            "  {state:<15}  {id:width$}  {took:>7}  {}",
            migration.description()
        );
    }
    if report.applied.is_empty() && report.background.is_empty() {
        println!(
            "nothing to apply: all {} migrations were already applied",
            report.already_applied.len()
        );
    } else {
        println!(
            "applied {} migrations at start and {} in the background, {} were already applied",
            report.applied.len(),
            report.background.len(),
            report.already_applied.len()
        );
    }
    Ok(())
}
