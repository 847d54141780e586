//! What the command line prints: the tables and lines a person reads, and
//! the JSON a script reads.

use std::fmt::Write as _;

use mongodb::bson::DateTime;
use serde_json::json;
use unicode_width::UnicodeWidthStr;

use crate::assess::commit_quorum::CommitQuorumWait;
use crate::assess::progress::{BackgroundTask, IndexBuild};
use crate::assess::report::ApplyReport;
use crate::assess::status::BackfillStatus;
use crate::assess::status::{LockStatus, Locks, State, Status};
use crate::declare::registry::Migration;
use crate::stored::lock::Lane;
use crate::support::convert::percent;

/// A status as `status --json` prints it: the [`Status`] and whether it
/// passes `--check`.
#[derive(serde::Serialize)]
pub(super) struct StatusOutput<'s> {
    #[serde(flatten)]
    pub(super) status: &'s Status,
    pub(super) up_to_date: bool,
}

/// `value` as one line of JSON.
pub(super) fn to_json(value: &impl serde::Serialize) -> String {
    match serde_json::to_string(value) {
        Ok(text) => format!("{text}\n"),
        // The crate's reports hold strings, numbers and lists only; a
        // failure would be a bug, and is said rather than hidden.
        Err(error) => format!(
            "{}\n",
            json!({ "error": { "kind": "internal", "message": error.to_string() } })
        ),
    }
}

pub(super) fn locks_text(locks: &Locks) -> String {
    Lane::ALL
        .into_iter()
        .map(|lane| format!("{}:\n{}", lane.as_str(), lock_text(locks.of(lane))))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lock_text(status: Option<&LockStatus>) -> String {
    let Some(status) = status else {
        return "nobody holds it\n".to_owned();
    };
    let mut text = String::new();
    let _ = writeln!(text, "holder:       {}", status.owner);
    let _ = writeln!(
        text,
        "process:      {} (pid {})",
        status.host.as_deref().unwrap_or("?"),
        status.pid.map_or_else(|| "?".to_owned(), |pid| pid.to_string())
    );
    let _ = writeln!(text, "since:        {}", date(status.since));
    let _ = writeln!(text, "running:      {}", status.running.as_deref().unwrap_or("-"));
    let _ = writeln!(text, "renewed at:   {}", date(Some(status.renewed_at)));
    let state = if status.released {
        "released; the next start takes it at once and finishes what it holds"
    } else if status.expired {
        "ended; the next start takes it over, or `unlock` removes it"
    } else {
        "live"
    };
    let _ = writeln!(
        text,
        "lease ends:   {} ({state})",
        date(Some(status.lease_ends_at))
    );
    if !status.unrecorded.is_empty() {
        let _ = writeln!(text, "unrecorded:   {}", status.unrecorded.join(", "));
    }
    for backfill in &status.backfills {
        let _ = writeln!(text, "{}", backfill_line(backfill));
    }
    text
}

/// One backfill under way, from its checkpoint: `backfill of
/// 0010_events_status on events: 12000 of 100000 done (12%) in 12 batches,
/// by host:1234, since ..., last moved ...`. Its key is named when it is
/// not its collection (a named backfill, or a later one on the same
/// collection).
pub(super) fn backfill_line(backfill: &BackfillStatus) -> String {
    let mut line = String::from("backfill ");
    if backfill.key != backfill.collection {
        let _ = write!(line, "{} ", backfill.key);
    }
    let _ = write!(
        line,
        "of {} on {}: {}",
        backfill.migration, backfill.collection, backfill.done
    );
    if let Some(total) = backfill.total {
        let _ = write!(line, " of {total}");
    }
    line.push_str(" done");
    if let Some(percent) = percent(backfill.done, backfill.total) {
        let _ = write!(line, " ({percent}%)");
    }
    let batches = if backfill.batches == 1 { "batch" } else { "batches" };
    let _ = write!(
        line,
        " in {} {batches}, by {}, since {}, last moved {}",
        backfill.batches,
        backfill.by,
        date(backfill.started_at),
        date(backfill.updated_at)
    );
    if backfill.unanswered > 0 {
        let runs = if backfill.unanswered == 1 { "run" } else { "runs" };
        let _ = write!(
            line,
            "; the update of its next batch got no answer in {} {runs}, so its documents may be \
             changed up to {} times",
            backfill.unanswered,
            backfill.unanswered.saturating_add(1)
        );
    }
    line
}

fn state_name(state: &State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Applied => "applied",
        State::Drifted { .. } => "drifted",
    }
}

/// `at` in RFC 3339 with its milliseconds always written, three digits
/// (`2026-11-28T16:14:59.880Z`), so that a column of times lines up; `-`
/// without one.
fn date(at: Option<DateTime>) -> String {
    at.and_then(|at| at.try_to_rfc3339_string().ok())
        .map_or_else(|| "-".to_owned(), |text| with_milliseconds(&text))
}

/// An RFC 3339 time in UTC as the driver writes it, its fraction of a
/// second cut after its last non-zero digit or left out, with three digits
/// of milliseconds.
fn with_milliseconds(text: &str) -> String {
    let Some(time) = text.strip_suffix('Z') else {
        return text.to_owned();
    };
    let (seconds, fraction) = time.split_once('.').unwrap_or((time, ""));
    format!("{seconds}.{fraction:0<3}Z")
}

pub(super) fn status_table(status: &Status) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "STATE".to_owned(),
        "APPLIED AT".to_owned(),
        "DURATION".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for migration in &status.migrations {
        rows.push([
            migration.id.clone(),
            state_name(&migration.state).to_owned(),
            date(migration.applied_at),
            migration.duration.map_or_else(
                || "-".to_owned(),
                |duration| format!("{} ms", duration.as_millis()),
            ),
            migration.description.clone(),
        ]);
    }
    for record in &status.unknown {
        rows.push([
            record.id.clone(),
            "unknown".to_owned(),
            date(record.applied_at),
            "-".to_owned(),
            match (&record.problem, &record.description) {
                (Some(problem), _) => format!("(not a record: {problem})"),
                (None, Some(description)) => description.clone(),
                (None, None) => "(not declared in this binary)".to_owned(),
            },
        ]);
    }
    let mut text = table(&rows);
    let (pending, drifted, unknown) = (
        status.pending().len(),
        status.drifted().len(),
        status.unknown.len(),
    );
    let _ = writeln!(text, "\n{pending} pending, {drifted} drifted, {unknown} unknown");
    for id in status.drifted() {
        let _ = writeln!(text, "{}", drift_line(id));
    }
    for backfill in &status.backfills {
        let _ = writeln!(text, "{}", backfill_line(backfill));
    }
    for build in &status.index_builds {
        let _ = writeln!(text, "{}", index_build_line(build));
    }
    text.push_str(&background_text(&status.background));
    text
}

/// What a drifted migration is and how to accept its edit.
fn drift_line(id: &str) -> String {
    format!(
        "drifted {id}: edited after it was applied, and the edit has not run; to accept the edit \
         without running it, run `mark-applied {id}`"
    )
}

/// One index build in progress: `index build on events (at_1): 40 of 100
/// done (40%)`, or `...: progress unknown` when the server does not say,
/// and `...; built, waiting for its commit quorum ...` once the
/// member's record of the build says it waits for its quorum.
pub(super) fn index_build_line(build: &IndexBuild) -> String {
    let mut line = format!("index build on {}", build.collection);
    if !build.indexes.is_empty() {
        let _ = write!(line, " ({})", build.indexes.join(", "));
    }
    match (build.done, build.total) {
        (Some(done), total) => {
            let _ = write!(line, ": {done}");
            if let Some(total) = total {
                let _ = write!(line, " of {total}");
            }
            line.push_str(" done");
            if let Some(percent) = build.percent() {
                let _ = write!(line, " ({percent}%)");
            }
        }
        (None, _) if build.commit_quorum.is_waiting() => {}
        (None, _) => line.push_str(": progress unknown"),
    }
    if let CommitQuorumWait::Waiting { quorum, ready } = &build.commit_quorum {
        let _ = write!(
            line,
            "; built, waiting for its commit quorum (`{quorum}`; voted: {}); members behind or \
             down keep it from committing",
            ready.join(", ")
        );
    }
    line
}

/// This process's background task, when it runs or has stopped on a
/// failure; nothing otherwise.
fn background_text(task: &BackgroundTask) -> String {
    match (&task.failed, task.running) {
        (Some(failed), _) => {
            let next = failed
                .next_attempt
                .map(|next| format!("; tried again after {}", date(Some(next))))
                .unwrap_or_default();
            format!(
                "background migration `{}` failed ({}), {} in a row, last at {} by {}: {}{next}\n",
                failed.id,
                failed.kind,
                failed.in_a_row,
                date(failed.at),
                failed.by,
                failed.message
            )
        }
        (None, true) => "background migrations are being applied by this process\n".to_owned(),
        (None, false) => String::new(),
    }
}

pub(super) fn plan_table(plan: &[&Migration]) -> String {
    if plan.is_empty() {
        return "nothing to apply\n".to_owned();
    }
    let mut rows = vec![["#".to_owned(), "ID".to_owned(), "DESCRIPTION".to_owned()]];
    for (position, migration) in plan.iter().enumerate() {
        rows.push([
            (position + 1).to_string(),
            migration.id().to_owned(),
            migration.description().to_owned(),
        ]);
    }
    table(&rows)
}

pub(super) fn plan_json(plan: &[&Migration]) -> String {
    to_json(&json!({ "pending": plan }))
}

pub(super) fn apply_text(report: &ApplyReport) -> String {
    let mut text = String::new();
    for id in &report.applied {
        let took = report
            .durations
            .get(id)
            .map_or(0, |duration| duration.as_millis());
        let how = if report.in_transaction.contains(id) {
            ", in one transaction with its record"
        } else if report.without_transaction.contains(id) {
            ", without a transaction: the server runs none"
        } else {
            ""
        };
        let _ = writeln!(text, "applied {id} ({took} ms{how})");
    }
    let _ = writeln!(
        text,
        "{} applied, {} already applied",
        report.applied.len(),
        report.already_applied.len()
    );
    if !report.background.is_empty() {
        let _ = writeln!(
            text,
            "{} background migration(s) left to this process's task: {}",
            report.background.len(),
            report.background.join(", ")
        );
    }
    text
}

/// Rows as columns padded to their widest cell.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == N {
                line.push_str(cell);
            } else {
                // Padded by display width: `format!`'s width counts chars,
                // which is wrong for wide and combining characters.
                let padding = widths[column].saturating_sub(cell.width());
                let _ = write!(line, "{cell}{:padding$}  ", "");
            }
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::status::MigrationStatus;

    #[test]
    fn times_keep_three_digits_of_milliseconds() {
        let second = 1_790_000_000_000;
        let shown = |millis: i64| date(Some(DateTime::from_millis(second + millis)));
        assert_eq!(shown(0), "2026-09-21T14:13:20.000Z");
        assert_eq!(shown(880), "2026-09-21T14:13:20.880Z");
        assert_eq!(shown(800), "2026-09-21T14:13:20.800Z");
        assert_eq!(shown(5), "2026-09-21T14:13:20.005Z");
        assert_eq!(shown(881), "2026-09-21T14:13:20.881Z");
        assert_eq!(date(None), "-");
    }

    fn migration(id: &str, state: State, applied_at: Option<i64>) -> MigrationStatus {
        MigrationStatus {
            id: id.to_owned(),
            description: format!("{id}'s description"),
            state,
            applied_at: applied_at.map(DateTime::from_millis),
            duration: applied_at.map(|_| std::time::Duration::from_millis(3)),
            applied_by: None,
            transaction: false,
            in_transaction: None,
        }
    }

    #[test]
    fn the_applied_at_column_lines_up_and_drift_says_how_to_accept_the_edit() {
        let status = Status {
            migrations: vec![
                migration("0001_events", State::Applied, Some(1_790_000_000_000)),
                migration("0002_users", State::Applied, Some(1_790_000_000_880)),
                migration(
                    "0003_orders",
                    State::Drifted {
                        recorded: "aaaa".to_owned(),
                        current: "bbbb".to_owned(),
                    },
                    Some(1_790_000_000_881),
                ),
                migration("0004_carts", State::Pending, None),
            ],
            unknown: Vec::new(),
            backfills: Vec::new(),
            index_builds: Vec::new(),
            background: BackgroundTask::default(),
        };
        let text = status_table(&status);
        // Every time has as many characters, so the times in their column
        // line up digit for digit.
        let times: Vec<&str> = text
            .lines()
            .filter_map(|line| line.split_whitespace().nth(2))
            .filter(|cell| cell.ends_with('Z'))
            .collect();
        assert_eq!(
            times,
            [
                "2026-09-21T14:13:20.000Z",
                "2026-09-21T14:13:20.880Z",
                "2026-09-21T14:13:20.881Z"
            ],
            "{text}"
        );
        let after_table: Vec<&str> = text.lines().skip_while(|line| !line.is_empty()).skip(1).collect();
        assert_eq!(
            after_table,
            [
                "1 pending, 1 drifted, 0 unknown",
                "drifted 0003_orders: edited after it was applied, and the edit has not run; to \
                 accept the edit without running it, run `mark-applied 0003_orders`",
            ],
            "{text}"
        );
    }

    #[test]
    fn a_backfill_under_way_reads_as_one_line() {
        let mut backfill = BackfillStatus {
            migration: "0010_events_status".to_owned(),
            key: "events".to_owned(),
            collection: "events".to_owned(),
            done: 12_000,
            total: Some(100_000),
            batches: 12,
            last_id_type: Some("int".to_owned()),
            unanswered: 0,
            by: "api-1:1234".to_owned(),
            owner: "api-1:1234:abc".to_owned(),
            started_at: Some(DateTime::from_millis(1_790_000_000_000)),
            updated_at: Some(DateTime::from_millis(1_790_000_060_000)),
        };
        assert_eq!(
            backfill_line(&backfill),
            "backfill of 0010_events_status on events: 12000 of 100000 done (12%) in 12 batches, \
             by api-1:1234, since 2026-09-21T14:13:20.000Z, last moved 2026-09-21T14:14:20.000Z"
        );
        backfill.key = "events#2".to_owned();
        backfill.total = None;
        backfill.batches = 1;
        backfill.started_at = None;
        assert_eq!(
            backfill_line(&backfill),
            "backfill events#2 of 0010_events_status on events: 12000 done in 1 batch, \
             by api-1:1234, since -, last moved 2026-09-21T14:14:20.000Z"
        );
        backfill.unanswered = 2;
        assert!(
            backfill_line(&backfill).ends_with(
                "; the update of its next batch got no answer in 2 runs, so its documents may be \
                 changed up to 3 times"
            ),
            "{}",
            backfill_line(&backfill)
        );
    }
}
