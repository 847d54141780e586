//! Release 1 of the rolling-deploy application: two migrations.

#[path = "../deploy/migrations.rs"]
mod migrations;
#[path = "../deploy/start.rs"]
mod start;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    start::run().await
}
