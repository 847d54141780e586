//! What preflight found: each finding's stable code, how bad it is, and the
//! report the probes' observations are folded into. Pure: the probes that
//! read the live database are in `preflight/`.

use std::fmt;

use mongodb::bson::Bson;
use serde::Serialize;

/// What a finding is about, by a name that never changes: the JSON's
/// `code`, and what `#[migration(accept = "...")]` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Code {
    /// A unique index over keys that existing documents share: its build
    /// fails.
    UniqueDuplicates,
    /// An index already there with the declared name or keys and other
    /// options: the command fails.
    IndexConflict,
    /// Existing documents the new validator refuses.
    ValidatorRejects,
    /// Documents a new TTL index (or a shorter `expireAfterSeconds`)
    /// deletes as soon as it is built.
    TtlDeletes,
    /// Documents whose TTL field is not a date: they never expire.
    TtlNotDates,
    /// A dropped index that queries used.
    IndexInUse,
    /// A backfill whose filter no index serves.
    CollectionScan,
}

impl Code {
    /// Every code, in the order reports list them.
    pub const ALL: [Code; 7] = [
        Code::UniqueDuplicates,
        Code::IndexConflict,
        Code::ValidatorRejects,
        Code::TtlDeletes,
        Code::TtlNotDates,
        Code::IndexInUse,
        Code::CollectionScan,
    ];

    /// The stable name: `unique_duplicates`, `index_conflict`, ...
    pub fn name(self) -> &'static str {
        match self {
            Code::UniqueDuplicates => "unique_duplicates",
            Code::IndexConflict => "index_conflict",
            Code::ValidatorRejects => "validator_rejects",
            Code::TtlDeletes => "ttl_deletes",
            Code::TtlNotDates => "ttl_not_dates",
            Code::IndexInUse => "index_in_use",
            Code::CollectionScan => "collection_scan",
        }
    }

    /// The code named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|code| code.name() == name)
    }

    /// How bad a finding of this code is, unless the probe says otherwise
    /// (a validator that only warns, for one).
    pub fn severity(self) -> Severity {
        match self {
            Code::UniqueDuplicates | Code::IndexConflict => Severity::Fails,
            Code::ValidatorRejects | Code::TtlDeletes | Code::IndexInUse => Severity::Hurts,
            Code::TtlNotDates | Code::CollectionScan => Severity::Info,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How bad a finding is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing breaks.
    Info,
    /// The migration succeeds, and hurts the service or its data.
    Hurts,
    /// The migration fails when it runs.
    Fails,
}

impl Severity {
    /// `info`, `hurts` or `fails`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Hurts => "hurts",
            Severity::Fails => "fails",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a pending migration will do to existing documents, found by a
/// read-only probe of the live database.
///
/// It names collections, indexes and counts, never a document's value;
/// `ids` holds a few offending documents' `_id`s only when asked for
/// (`--show-ids`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// The pending migration it is about.
    pub migration: String,
    /// What it is about.
    pub code: Code,
    /// How bad it is.
    pub severity: Severity,
    /// The collection.
    pub collection: String,
    /// The index it is about, by name, when it is about one.
    pub index: Option<String>,
    /// How many existing documents it is about (for `index_in_use`, how
    /// many operations used the index since the server counted).
    pub count: u64,
    /// What it means and what to do, in one or two sentences.
    pub message: String,
    /// Whether the migration's declaration accepts it
    /// (`#[migration(accept = "...")]`): printed, never failing.
    pub accepted: bool,
    /// A few offending documents' `_id`s, only when asked for. In JSON,
    /// relaxed extended JSON.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "relaxed")]
    pub ids: Vec<Bson>,
}

fn relaxed<S: serde::Serializer>(ids: &[Bson], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(ids.iter().map(|id| id.clone().into_relaxed_extjson()))
}

/// A probe that could not say: it timed out, or the server refused it.
/// Never read as clean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inconclusive {
    /// The pending migration it is about.
    pub migration: String,
    /// What the probe would have found.
    pub code: Code,
    /// The collection.
    pub collection: String,
    /// The index it is about, by name, when it is about one.
    pub index: Option<String>,
    /// Why it could not say.
    pub reason: String,
}

/// What [`SchemaManager::preflight`](crate::SchemaManager::preflight)
/// found about the pending migrations, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PreflightReport {
    /// The pending migrations probed, in apply order.
    pub pending: Vec<String>,
    /// What the probes found.
    pub findings: Vec<Finding>,
    /// The probes that could not say.
    pub inconclusive: Vec<Inconclusive>,
}

impl PreflightReport {
    /// The findings not accepted whose severity is `at_least` or worse:
    /// what fails a deploy under that threshold.
    pub fn denied(&self, at_least: Severity) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |finding| !finding.accepted && finding.severity >= at_least)
    }

    /// Whether a finding not accepted says a migration would fail.
    pub fn fails(&self) -> bool {
        self.denied(Severity::Fails).next().is_some()
    }
}

/// What one probe saw, before it is put to a migration and its accepted
/// codes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observed {
    pub(crate) code: Code,
    pub(crate) collection: String,
    pub(crate) index: Option<String>,
    pub(crate) seen: Seen,
}

/// A probe's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen {
    /// Documents (or uses) it is about: 0 for a finding about no document
    /// (`index_conflict`).
    Found {
        count: u64,
        severity: Severity,
        message: String,
        ids: Vec<Bson>,
    },
    /// It could not say, and why.
    Inconclusive(String),
}

impl Observed {
    /// A finding of `count` with the code's own severity.
    pub(crate) fn found(
        code: Code,
        collection: &str,
        index: Option<&str>,
        count: u64,
        message: String,
        ids: Vec<Bson>,
    ) -> Observed {
        Observed {
            code,
            collection: collection.to_owned(),
            index: index.map(str::to_owned),
            seen: Seen::Found {
                count,
                severity: code.severity(),
                message,
                ids,
            },
        }
    }

    /// A probe that could not say, and why.
    pub(crate) fn inconclusive(
        code: Code,
        collection: &str,
        index: Option<&str>,
        reason: String,
    ) -> Observed {
        Observed {
            code,
            collection: collection.to_owned(),
            index: index.map(str::to_owned),
            seen: Seen::Inconclusive(reason),
        }
    }

    /// The same with another severity than the code's.
    pub(crate) fn with_severity(mut self, to: Severity) -> Observed {
        if let Seen::Found { severity, .. } = &mut self.seen {
            *severity = to;
        }
        self
    }
}

impl PreflightReport {
    /// Adds what the probes of `migration` saw, marking what it accepts.
    pub(crate) fn add(&mut self, migration: &str, accepts: &[Code], observed: Vec<Observed>) {
        for Observed {
            code,
            collection,
            index,
            seen,
        } in observed
        {
            match seen {
                Seen::Found {
                    count,
                    severity,
                    message,
                    ids,
                } => self.findings.push(Finding {
                    migration: migration.to_owned(),
                    code,
                    severity,
                    collection,
                    index,
                    count,
                    message,
                    accepted: accepts.contains(&code),
                    ids,
                }),
                Seen::Inconclusive(reason) => self.inconclusive.push(Inconclusive {
                    migration: migration.to_owned(),
                    code,
                    collection,
                    index,
                    reason,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_found_by_its_name_and_no_other_name_is_a_code() {
        for code in Code::ALL {
            assert_eq!(Code::from_name(code.name()), Some(code));
            assert_eq!(
                serde_json::to_value(code).expect("a code serializes"),
                serde_json::json!(code.name())
            );
        }
        assert_eq!(Code::from_name("unique_duplicate"), None);
        assert_eq!(Code::from_name("UNIQUE_DUPLICATES"), None);
    }

    #[test]
    fn accepted_findings_never_deny_and_the_threshold_is_inclusive() {
        let mut report = PreflightReport::default();
        let seen = |code: Code| Observed::found(code, "events", None, 2, "two".into(), Vec::new());
        report.add(
            "0001",
            &[Code::UniqueDuplicates],
            vec![seen(Code::UniqueDuplicates), seen(Code::TtlDeletes)],
        );
        assert!(!report.fails(), "the only failing finding is accepted");
        let denied: Vec<Code> = report.denied(Severity::Hurts).map(|f| f.code).collect();
        assert_eq!(denied, [Code::TtlDeletes]);
        report.add("0002", &[], vec![seen(Code::IndexConflict)]);
        assert!(report.fails());
        report.add(
            "0002",
            &[],
            vec![Observed::inconclusive(
                Code::IndexInUse,
                "events",
                Some("a_1"),
                "refused".into(),
            )],
        );
        assert_eq!(report.inconclusive.len(), 1);
        assert_eq!(report.findings.len(), 3);
    }
}
