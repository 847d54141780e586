//! `preflight`: what the pending migrations will do to this database,
//! before a deploy, with status 3 when one would fail (or hurt, denied).

use std::fmt::Write as _;
use std::time::Duration;

use super::CHECK_FAILED;
use super::text::to_json;
use crate::assess::preflight::{Finding, PreflightReport, Severity};
use crate::manager::{PreflightOptions, SchemaManager};
use crate::support::error::Error;

/// Which findings fail `preflight` (exit status 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum Deny {
    /// Those that say a migration fails (the default).
    #[default]
    Fails,
    /// Those that say a migration fails or hurts.
    Hurts,
    /// Every finding not accepted.
    Info,
}

impl Deny {
    fn severity(self) -> Severity {
        match self {
            Deny::Fails => Severity::Fails,
            Deny::Hurts => Severity::Hurts,
            Deny::Info => Severity::Info,
        }
    }
}

/// What `preflight` was asked for.
pub(super) struct Probes<'a> {
    pub(super) show_ids: bool,
    pub(super) max_time: u64,
    pub(super) deny: Deny,
    /// The scratch database to use instead of a new one.
    pub(super) scratch: Option<&'a str>,
}

/// `preflight [--show-ids] [--max-time SECONDS] [--deny LEVEL]
/// [--snapshot-database NAME]`: the findings, with status 3 when one not
/// accepted is at `deny` or worse.
pub(super) async fn preflight(
    manager: &SchemaManager,
    probes: &Probes<'_>,
    json: bool,
) -> Result<(String, u8), Error> {
    let mut manager = manager.clone();
    if let Some(name) = probes.scratch {
        let scratch = manager.database().client().database(name);
        manager = manager.snapshot_database(scratch);
    }
    let options = PreflightOptions::default()
        .max_time(Duration::from_secs(probes.max_time))
        .show_ids(probes.show_ids);
    let report = manager.preflight_with(&options).await?;
    let deny = probes.deny.severity();
    let denied = report.denied(deny).next().is_some();
    let output = if json {
        to_json(&report)
    } else {
        text(&report, deny)
    };
    Ok((output, if denied { CHECK_FAILED } else { 0 }))
}

/// The report for a person: each pending migration's findings, then the
/// probes that could not say, then one line of totals.
fn text(report: &PreflightReport, deny: Severity) -> String {
    let mut text = String::new();
    if report.pending.is_empty() {
        return "nothing is pending: nothing to check\n".to_owned();
    }
    let _ = writeln!(
        text,
        "preflight of {} pending migration{}: {}",
        report.pending.len(),
        if report.pending.len() == 1 { "" } else { "s" },
        report.pending.join(", ")
    );
    for id in &report.pending {
        let findings: Vec<&Finding> = report.findings.iter().filter(|f| &f.migration == id).collect();
        if findings.is_empty() {
            continue;
        }
        let _ = writeln!(text, "{id}");
        for finding in findings {
            let place = match &finding.index {
                Some(index) => format!("{}.{index}", finding.collection),
                None => finding.collection.clone(),
            };
            let accepted = if finding.accepted { " (accepted)" } else { "" };
            let _ = writeln!(
                text,
                "  {:<5}  {}  {place}: {}{accepted}",
                finding.severity, finding.code, finding.message
            );
            if !finding.ids.is_empty() {
                let ids: Vec<String> = finding
                    .ids
                    .iter()
                    .map(|id| id.clone().into_relaxed_extjson().to_string())
                    .collect();
                let _ = writeln!(text, "         _id: {}", ids.join(", "));
            }
        }
    }
    if !report.inconclusive.is_empty() {
        let _ = writeln!(text, "could not say (not clean):");
        for probe in &report.inconclusive {
            let place = match &probe.index {
                Some(index) => format!("{}.{index}", probe.collection),
                None => probe.collection.clone(),
            };
            let _ = writeln!(
                text,
                "  {}  {}  {place}: {}",
                probe.migration, probe.code, probe.reason
            );
        }
    }
    let denied = report.denied(deny).count();
    let accepted = report.findings.iter().filter(|f| f.accepted).count();
    let _ = writeln!(
        text,
        "{} finding{} ({} denied, {} accepted), {} probe{} inconclusive",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" },
        denied,
        accepted,
        report.inconclusive.len(),
        if report.inconclusive.len() == 1 { "" } else { "s" },
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::preflight::{Code, Observed};

    #[test]
    fn the_text_names_each_finding_once_under_its_migration_and_counts_what_is_denied() {
        let mut report = PreflightReport {
            pending: vec!["0001_a".into(), "0002_b".into()],
            ..PreflightReport::default()
        };
        report.add(
            "0002_b",
            &[Code::TtlDeletes],
            vec![
                Observed::found(
                    Code::UniqueDuplicates,
                    "users",
                    Some("email_1"),
                    4,
                    "4 documents share a key".into(),
                    Vec::new(),
                ),
                Observed::found(
                    Code::TtlDeletes,
                    "events",
                    None,
                    9,
                    "9 deleted".into(),
                    Vec::new(),
                ),
                Observed::inconclusive(Code::IndexInUse, "users", Some("old_1"), "refused".into()),
            ],
        );
        let shown = text(&report, Severity::Fails);
        assert!(
            shown.starts_with("preflight of 2 pending migrations: 0001_a, 0002_b\n0002_b\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  fails  unique_duplicates  users.email_1: 4 documents share a key\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  hurts  ttl_deletes  events: 9 deleted (accepted)\n"),
            "{shown}"
        );
        assert!(
            shown.contains("could not say (not clean):\n  0002_b  index_in_use  users.old_1: refused\n"),
            "{shown}"
        );
        assert!(
            shown.ends_with("2 findings (1 denied, 1 accepted), 1 probe inconclusive\n"),
            "{shown}"
        );
        assert_eq!(
            text(&PreflightReport::default(), Severity::Fails),
            "nothing is pending: nothing to check\n"
        );
    }
}
