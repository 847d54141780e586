//! `fleet status` and `fleet apply`: a migration set over many tenant
//! databases, printed as a summary grouped by outcome or as JSON, with the
//! progress of `apply` on stderr.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Output;
use super::text::to_json;
use crate::fleet::{Fleet, FleetReport, Outcome, Selection, Shard};
use crate::manager::SchemaManager;
use crate::support::error::Error;

/// How many tenants a summary names for each outcome before "and N more".
const NAMED: usize = 10;

/// How often, at most, a line tells how `fleet apply` is going when stderr
/// is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// A command on a fleet of tenant databases, each migrated as `apply`
/// migrates one: `app fleet status --prefix tenant_`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
#[non_exhaustive]
pub enum FleetCommand {
    /// Each tenant's pending migrations and unknown records, one read per tenant
    ///
    /// Exit status 3 while any tenant has a migration pending; 1 when a tenant could not be read.
    Status {
        /// Which tenants.
        #[command(flatten)]
        tenants: Tenants,
        /// Read at most this many tenants at once
        #[arg(long, default_value_t = 1, value_name = "N")]
        concurrency: usize,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Apply every pending migration to each tenant (background migrations included)
    ///
    /// Exit status 0 when every tenant was applied, up to date or locked by another process;
    /// 1 when any failed or was skipped.
    Apply {
        /// Which tenants.
        #[command(flatten)]
        tenants: Tenants,
        /// Migrate at most this many tenants at once
        #[arg(long, default_value_t = 1, value_name = "N")]
        concurrency: usize,
        /// Apply the first N tenants in name order first, one at a time; if one fails, touch no other
        #[arg(long, default_value_t = 0, value_name = "N")]
        canary: usize,
        /// Once more than N tenants failed, start no other
        #[arg(long, value_name = "N")]
        max_failures: Option<usize>,
        /// Wait this long for a tenant's lock another process holds before it is `locked` (default: the lease and a fifth, at least 5)
        #[arg(long, value_name = "SECONDS")]
        lock_wait: Option<u64>,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
}

/// Which tenant databases a fleet command takes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[non_exhaustive]
pub struct Tenants {
    /// Every database whose name starts with P (literally; never admin, local or config)
    #[arg(
        long,
        value_name = "P",
        conflicts_with = "databases",
        required_unless_present = "databases"
    )]
    pub prefix: Option<String>,
    /// These databases, comma-separated
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub databases: Option<Vec<String>>,
    /// Take only share K of N (0 <= K < N): N runners with 0/N to N-1/N cover every tenant once
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// A prefix that matches no database is an empty fleet (exit 0), not an error
    #[arg(long, requires = "prefix")]
    pub allow_empty: bool,
}

impl FleetCommand {
    pub(super) fn output(&self) -> &Output {
        match self {
            FleetCommand::Status { output, .. } | FleetCommand::Apply { output, .. } => output,
        }
    }
}

/// Runs `command` with `manager`'s client and settings: what it prints,
/// and its exit status.
pub(super) async fn run(manager: &SchemaManager, command: &FleetCommand) -> Result<(String, u8), Error> {
    let json = command.output().json;
    match command {
        FleetCommand::Status {
            tenants, concurrency, ..
        } => {
            let report = fleet(manager, tenants)?
                .concurrency(*concurrency)
                .status()
                .await?;
            let code = if report.summary.failed > 0 {
                1
            } else if report.summary.behind > 0 {
                super::CHECK_FAILED
            } else {
                0
            };
            Ok((if json { to_json(&report) } else { summary(&report) }, code))
        }
        FleetCommand::Apply {
            tenants,
            concurrency,
            canary,
            max_failures,
            lock_wait,
            ..
        } => {
            let mut fleet = fleet(manager, tenants)?.concurrency(*concurrency).canary(*canary);
            if let Some(failures) = max_failures {
                fleet = fleet.max_failures(*failures);
            }
            if let Some(seconds) = lock_wait {
                fleet = fleet.lock_wait(std::time::Duration::from_secs(*seconds));
            }
            let shown = (!json).then(|| Shown::new(std::io::stderr().is_terminal()));
            if let Some(shown) = &shown {
                let shown = shown.clone();
                fleet = fleet.on_tenant(move |tenant, done, total| shown.ended(tenant.outcome, done, total));
            }
            let report = fleet.apply().await;
            if let Some(shown) = &shown {
                shown.close();
            }
            let report = report?;
            let code = u8::from(!report.is_success());
            Ok((if json { to_json(&report) } else { summary(&report) }, code))
        }
    }
}

/// The fleet `tenants` names, on `manager`.
fn fleet(manager: &SchemaManager, tenants: &Tenants) -> Result<Fleet, Error> {
    let selection = match (&tenants.prefix, &tenants.databases) {
        (Some(prefix), _) => Selection::prefix(prefix.clone()),
        (None, Some(names)) => Selection::databases(names.clone()),
        (None, None) => Selection::databases(Vec::<String>::new()),
    };
    let fleet = Fleet::new(manager.clone(), selection).allow_empty(tenants.allow_empty);
    Ok(match &tenants.shard {
        Some(shard) => fleet.shard(shard.parse::<Shard>()?),
        None => fleet,
    })
}

/// The tenants grouped by outcome, a line for each outcome, and a line for
/// each of the first failures: "4,812 up to date", "3 behind: a, b, c".
pub(super) fn summary(report: &FleetReport) -> String {
    let mut text = String::new();
    if report.tenants.is_empty() {
        text.push_str("no tenant\n");
        return text;
    }
    for outcome in Outcome::ALL {
        let count = report.summary.count(outcome);
        if count == 0 {
            continue;
        }
        let _ = write!(text, "{} {}", grouped(count), label(outcome));
        if matches!(outcome, Outcome::Applied | Outcome::UpToDate) {
            text.push('\n');
            continue;
        }
        let names: Vec<&str> = report
            .with(outcome)
            .take(NAMED)
            .map(|tenant| tenant.database.as_str())
            .collect();
        let _ = write!(text, ": {}", names.join(", "));
        if count > NAMED {
            let _ = write!(text, " (and {} more)", grouped(count - NAMED));
        }
        text.push('\n');
    }
    for tenant in report.with(Outcome::Failed).take(NAMED) {
        if let Some(error) = &tenant.error {
            let _ = writeln!(text, "{}: {}", tenant.database, error.message);
        }
    }
    text
}

/// `count` with its thousands grouped: `4,812`.
fn grouped(count: usize) -> String {
    let digits = count.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// How a summary line names the tenants of `outcome`.
fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "applied",
        Outcome::UpToDate => "up to date",
        Outcome::Behind => "behind",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
        Outcome::Locked => "locked by another process",
    }
}

/// The progress of `fleet apply` on stderr: a bar of tenants ended on a
/// terminal, otherwise a line at most every two seconds and one at the end.
#[derive(Clone)]
struct Shown(Arc<Mutex<Display>>);

enum Display {
    Bar {
        bar: Option<ProgressBar>,
        failed: usize,
    },
    Lines {
        told: Option<Instant>,
        last: (usize, usize, usize),
    },
}

impl Shown {
    fn new(terminal: bool) -> Shown {
        Shown(Arc::new(Mutex::new(if terminal {
            Display::Bar { bar: None, failed: 0 }
        } else {
            Display::Lines {
                told: None,
                last: (0, 0, 0),
            }
        })))
    }

    /// A tenant ended with `outcome`, the `done`th of `total`.
    fn ended(&self, outcome: Outcome, done: usize, total: usize) {
        let mut display = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *display {
            Display::Bar { bar, failed } => {
                let bar = bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                    if let Ok(style) = ProgressStyle::with_template("tenants {bar:30} {pos}/{len} {msg}") {
                        bar.set_style(style);
                    }
                    bar.set_message("0 failed");
                    bar
                });
                bar.set_position(done as u64);
                if outcome == Outcome::Failed {
                    *failed += 1;
                    bar.set_message(format!("{failed} failed"));
                }
            }
            Display::Lines { told, last } => {
                let failed = last.2 + usize::from(outcome == Outcome::Failed);
                *last = (done, total, failed);
                if done == total || told.is_none_or(|at| at.elapsed() >= LINE_EVERY) {
                    *told = Some(Instant::now());
                    eprintln!("tenants: {done} of {total} done, {failed} failed");
                }
            }
        }
    }

    /// Leaves the bar drawn as it ended.
    fn close(&self) {
        let display = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Display::Bar { bar: Some(bar), .. } = &*display {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(4812), "4,812");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
