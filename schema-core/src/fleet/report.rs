//! What a fleet run reports: each tenant's outcome and the count of each.

use serde::Serialize;

/// How one tenant of a fleet ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// `apply`: migrations were applied; [`TenantReport::applied`] names them.
    Applied,
    /// Nothing was pending.
    UpToDate,
    /// `status`: migrations are pending; [`TenantReport::pending`] names them.
    Behind,
    /// The tenant could not be migrated (or read); [`TenantReport::error`]
    /// says why. What was applied before the failure stays recorded.
    Failed,
    /// `apply`: not started, because a canary failed or more tenants
    /// failed than the failure budget allows. Nothing was sent to it.
    Skipped,
    /// `apply`: another process held the tenant's lock past the fleet's
    /// lock wait. Not a failure: that process migrates it, or a later run.
    Locked,
}

impl Outcome {
    /// Every outcome, in the order a summary lists them.
    pub const ALL: [Outcome; 6] = [
        Outcome::Applied,
        Outcome::UpToDate,
        Outcome::Behind,
        Outcome::Locked,
        Outcome::Failed,
        Outcome::Skipped,
    ];

    /// The name JSON gives it: `applied`, `up_to_date`, ...
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::UpToDate => "up_to_date",
            Outcome::Behind => "behind",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Locked => "locked",
        }
    }
}

/// A tenant's error: its [`Error::kind`](crate::Error::kind) and its
/// message on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantError {
    /// The error's kind, such as `migration_failed`.
    pub kind: &'static str,
    /// The error with its causes, on one line.
    pub message: String,
}

/// How one tenant ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantReport {
    /// The tenant's database.
    pub database: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The ids this run applied, in order.
    pub applied: Vec<String>,
    /// `status`: the ids not recorded yet, in order.
    pub pending: Vec<String>,
    /// `status`: the ids of records this binary does not declare.
    pub unknown: Vec<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TenantError>,
}

impl TenantReport {
    pub(crate) fn new(database: &str, outcome: Outcome) -> TenantReport {
        TenantReport {
            database: database.to_owned(),
            outcome,
            applied: Vec::new(),
            pending: Vec::new(),
            unknown: Vec::new(),
            error: None,
        }
    }
}

/// What a fleet run did, tenant by tenant in name order, and how many
/// tenants ended each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FleetReport {
    /// Each tenant, in name order.
    pub tenants: Vec<TenantReport>,
    /// How many tenants ended each way.
    pub summary: Summary,
}

/// How many tenants ended each way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Every tenant of this run (of its shard).
    pub total: usize,
    /// Tenants that had migrations applied.
    pub applied: usize,
    /// Tenants with nothing pending.
    pub up_to_date: usize,
    /// Tenants with migrations pending (`status`).
    pub behind: usize,
    /// Tenants whose lock another process held.
    pub locked: usize,
    /// Tenants that failed.
    pub failed: usize,
    /// Tenants not started.
    pub skipped: usize,
}

impl Summary {
    /// How many tenants ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        match outcome {
            Outcome::Applied => self.applied,
            Outcome::UpToDate => self.up_to_date,
            Outcome::Behind => self.behind,
            Outcome::Failed => self.failed,
            Outcome::Skipped => self.skipped,
            Outcome::Locked => self.locked,
        }
    }
}

impl FleetReport {
    pub(crate) fn of(tenants: Vec<TenantReport>) -> FleetReport {
        let mut summary = Summary {
            total: tenants.len(),
            ..Summary::default()
        };
        for tenant in &tenants {
            let count = match tenant.outcome {
                Outcome::Applied => &mut summary.applied,
                Outcome::UpToDate => &mut summary.up_to_date,
                Outcome::Behind => &mut summary.behind,
                Outcome::Failed => &mut summary.failed,
                Outcome::Skipped => &mut summary.skipped,
                Outcome::Locked => &mut summary.locked,
            };
            *count += 1;
        }
        FleetReport { tenants, summary }
    }

    /// Whether every tenant was applied, up to date or locked: none failed,
    /// none was skipped, none is behind.
    pub fn is_success(&self) -> bool {
        self.summary.failed == 0 && self.summary.skipped == 0 && self.summary.behind == 0
    }

    /// The tenants that ended with `outcome`, in name order.
    pub fn with(&self, outcome: Outcome) -> impl Iterator<Item = &TenantReport> {
        self.tenants
            .iter()
            .filter(move |tenant| tenant.outcome == outcome)
    }
}
