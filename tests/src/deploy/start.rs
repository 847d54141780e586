//! What both releases of the rolling-deploy application run: with
//! arguments, the schema command line; without, a start that applies the
//! migrations to `WORKER_DB` and prints what it did. `ON_UNKNOWN=fail` sets
//! `on_unknown(Policy::Fail)`. Warnings go to stderr.

use std::process::ExitCode;

use schema_core::{Policy, SchemaManager};

pub(crate) async fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let Some((_, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let on_unknown = match std::env::var("ON_UNKNOWN").as_deref() {
        Ok("fail") => Policy::Fail,
        _ => Policy::Warn,
    };
    let manager = SchemaManager::new(db).on_unknown(on_unknown);
    let code = if std::env::args_os().len() > 1 {
        schema_core::cli::run(manager).await
    } else {
        match manager.apply_all().await {
            Ok(report) => {
                println!("applied={}", report.applied.join(","));
                println!("unknown={}", report.unknown.join(","));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {}", schema_tests::chain(&error));
                ExitCode::FAILURE
            }
        }
    };
    client.shutdown().await;
    code
}
