//! `wait --timeout SECONDS`: until every migration is recorded, for an
//! init container or a deploy step. Exit 0 once applied; 3 when the
//! timeout passes first, with what is pending and how far the running one
//! is; 1 on an error.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::CHECK_FAILED;
use super::text::{backfill_line, index_build_line, to_json};
use crate::manager::SchemaManager;
use crate::support::error::Error;

/// What `wait` prints, and its exit status.
pub(super) async fn wait(
    manager: &SchemaManager,
    timeout: Duration,
    json: bool,
) -> Result<(String, u8), Error> {
    let (pending, running, waited) = match manager.wait_applied(timeout).await {
        Ok(()) => {
            let output = if json {
                to_json(&json!({ "applied": true, "pending": [] }))
            } else {
                "every migration is recorded\n".to_owned()
            };
            return Ok((output, 0));
        }
        Err(Error::NotApplied {
            pending,
            running,
            waited,
        }) => (pending, running, waited),
        Err(error) => return Err(error),
    };
    // How far the running migration is: its backfills' checkpoints and
    // the index builds the server reports.
    let status = manager.status().await?;
    let backfills: Vec<_> = status
        .backfills
        .iter()
        .filter(|backfill| Some(&backfill.migration) == running.as_ref())
        .collect();
    if json {
        let output = json!({
            "applied": false,
            "waited_ms": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "pending": pending,
            "running": running,
            "backfills": backfills,
            "index_builds": status.index_builds,
        });
        return Ok((to_json(&output), CHECK_FAILED));
    }
    let mut text = format!(
        "not applied after {} s: {} pending: {}\n",
        waited.as_secs(),
        pending.len(),
        pending.join(", ")
    );
    if let Some(running) = &running {
        let _ = writeln!(text, "running: {running}");
        for backfill in &backfills {
            let _ = writeln!(text, "  {}", backfill_line(backfill));
        }
        for build in &status.index_builds {
            let _ = writeln!(text, "  {}", index_build_line(build));
        }
        if backfills.is_empty() && status.index_builds.is_empty() {
            text.push_str(
                "  progress unknown: no backfill checkpoint, and the server reports no index build\n",
            );
        }
    }
    Ok((text, CHECK_FAILED))
}
