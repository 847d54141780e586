//! One migration set over many databases: a fleet of tenants, each its own
//! database with the same schema, migrated on one client.
//!
//! A [`Fleet`] takes a [`SchemaManager`] (its client, set, collections,
//! lease and policies) and a [`Selection`] of tenant databases, and runs
//! for each tenant what the manager runs for one database: [`Fleet::apply`]
//! is `apply_all` (its lock, fencing, records, backfills and background
//! migrations), [`Fleet::status`] one read of the versions collection.
//! Every tenant ends with an [`Outcome`]; a failure stays that tenant's.
//!
//! ```no_run
//! # async fn run(manager: schema_core::SchemaManager) -> Result<(), schema_core::Error> {
//! use schema_core::fleet::{Fleet, Selection};
//!
//! let report = Fleet::new(manager, Selection::prefix("tenant_"))
//!     .concurrency(8)
//!     .canary(3)
//!     .max_failures(5)
//!     .apply()
//!     .await?;
//! println!("{} failed of {}", report.summary.failed, report.summary.total);
//! # Ok(())
//! # }
//! ```

mod report;
mod selection;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream;
use tracing::{Instrument as _, info_span};

pub use self::report::{FleetReport, Outcome, Summary, TenantError, TenantReport};
pub use self::selection::{Selection, Shard};
use crate::manager::SchemaManager;
use crate::support::error::{Error, chain};

/// Hears of each tenant as it ends, with how many of how many have ended.
type Observer = Arc<dyn Fn(&TenantReport, usize, usize) + Send + Sync>;

/// Many tenant databases migrated as one fleet (see the [module](self)).
#[derive(Clone)]
pub struct Fleet {
    manager: SchemaManager,
    selection: Selection,
    shard: Option<Shard>,
    concurrency: usize,
    canary: usize,
    max_failures: Option<usize>,
    /// `None`: [`Fleet::DEFAULT_LOCK_WAIT`], or the lease and a fifth.
    lock_wait: Option<Duration>,
    allow_empty: bool,
    observers: Vec<Observer>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("manager", &self.manager)
            .field("selection", &self.selection)
            .field("shard", &self.shard)
            .field("concurrency", &self.concurrency)
            .field("canary", &self.canary)
            .field("max_failures", &self.max_failures)
            .field("lock_wait", &self.lock_wait)
            .field("allow_empty", &self.allow_empty)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// The shortest time [`apply`](Fleet::apply) waits for a tenant's lock
    /// that another process holds unless [`lock_wait`](Fleet::lock_wait)
    /// says otherwise: 5 seconds, or the manager's lease and a fifth when
    /// that is longer, so that a tenant a killed run left locked is taken
    /// over by the next run rather than reported `locked`. Then the tenant
    /// is [`Outcome::Locked`].
    pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(5);

    /// The fleet of `selection`, migrated with `manager`'s client and
    /// settings; the manager's own database is not a tenant unless
    /// selected. One tenant at a time, no canary, no failure budget.
    pub fn new(manager: SchemaManager, selection: Selection) -> Fleet {
        Fleet {
            manager,
            selection,
            shard: None,
            concurrency: 1,
            canary: 0,
            max_failures: None,
            lock_wait: None,
            allow_empty: false,
            observers: Vec::new(),
        }
    }

    /// Takes only `shard`'s share of the selected tenants.
    pub fn shard(mut self, shard: Shard) -> Fleet {
        self.shard = Some(shard);
        self
    }

    /// Migrates at most `tenants` tenants at once (1 by default); 0 is an
    /// [`Error::Configuration`] when the fleet runs. The tenants share the
    /// manager's client, whose connections this bounds.
    pub fn concurrency(mut self, tenants: usize) -> Fleet {
        self.concurrency = tenants;
        self
    }

    /// [`apply`](Fleet::apply) migrates the first `tenants` tenants in name
    /// order first, one at a time; if any of them fails, it starts no
    /// other ([`Outcome::Skipped`]).
    pub fn canary(mut self, tenants: usize) -> Fleet {
        self.canary = tenants;
        self
    }

    /// Once more than `failures` tenants failed, [`apply`](Fleet::apply)
    /// starts no other tenant ([`Outcome::Skipped`]); those under way end.
    pub fn max_failures(mut self, failures: usize) -> Fleet {
        self.max_failures = Some(failures);
        self
    }

    /// How long [`apply`](Fleet::apply) waits for a tenant's lock another
    /// process holds before it leaves the tenant [`Outcome::Locked`]
    /// ([`DEFAULT_LOCK_WAIT`](Fleet::DEFAULT_LOCK_WAIT), or the lease and a
    /// fifth, by default).
    pub fn lock_wait(mut self, wait: Duration) -> Fleet {
        self.lock_wait = Some(wait);
        self
    }

    /// Lets a prefix that matches no database make an empty fleet, which
    /// reports no tenant, instead of an [`Error::Configuration`] (for a
    /// service that may have no tenant yet).
    pub fn allow_empty(mut self, allow: bool) -> Fleet {
        self.allow_empty = allow;
        self
    }

    /// Calls `observe` as each tenant ends, with its report, how many
    /// tenants have ended and how many there are: to draw a progress bar.
    /// It runs on the fleet's task, so it should return quickly.
    pub fn on_tenant(
        mut self,
        observe: impl Fn(&TenantReport, usize, usize) + Send + Sync + 'static,
    ) -> Fleet {
        self.observers.push(Arc::new(observe));
        self
    }

    /// The tenants this run takes, in name order: the selection (listed
    /// for a prefix), then the shard's share of it.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty selection, an empty prefix,
    /// a prefix no database's name starts with (unless
    /// [`allow_empty`](Fleet::allow_empty)), or a name MongoDB refuses;
    /// [`Error::ConnectionFailed`] or [`Error::Database`] when the
    /// databases cannot be listed.
    pub async fn tenants(&self) -> Result<Vec<String>, Error> {
        let names = self
            .selection
            .resolve(self.manager.database().client(), self.allow_empty)
            .await?;
        Ok(match self.shard {
            Some(shard) => names.into_iter().filter(|name| shard.holds(name)).collect(),
            None => names,
        })
    }

    /// Each tenant's pending migrations and unknown records, read with one
    /// read of its versions collection; writes nothing. A tenant that
    /// cannot be read is [`Outcome::Failed`], the others
    /// [`Outcome::UpToDate`] or [`Outcome::Behind`].
    ///
    /// # Errors
    ///
    /// Those of [`tenants`](Fleet::tenants), and [`Error::Configuration`]
    /// for a concurrency of 0 or an invalid set (before anything is sent).
    pub async fn status(&self) -> Result<FleetReport, Error> {
        let tenants = self.prepare().await?;
        let ended = AtomicUsize::new(0);
        let total = tenants.len();
        let reports = stream::iter(tenants)
            .map(|name| {
                let manager = self.tenant(&name);
                let span = info_span!("fleet_tenant", database = %name);
                let ended = &ended;
                async move {
                    let report = match manager.pending_and_unknown().await {
                        Ok((pending, unknown)) => {
                            let outcome = if pending.is_empty() {
                                Outcome::UpToDate
                            } else {
                                Outcome::Behind
                            };
                            let mut report = TenantReport::new(&name, outcome);
                            report.pending = pending
                                .iter()
                                .map(|migration| migration.id().to_owned())
                                .collect();
                            report.unknown = unknown;
                            report
                        }
                        Err(error) => failed(&name, &error),
                    };
                    self.ended(&report, ended, total);
                    report
                }
                .instrument(span)
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        Ok(FleetReport::of(in_order(reports)))
    }

    /// Applies every pending migration to each tenant, as
    /// [`apply_all`](SchemaManager::apply_all) with
    /// [`wait_for_background`](SchemaManager::wait_for_background) does for
    /// one database, at most [`concurrency`](Fleet::concurrency) tenants
    /// at once, started in name order after the
    /// [canaries](Fleet::canary). A tenant's failure is its
    /// [`Outcome::Failed`], and stops only that tenant (and the run, past
    /// the canaries or the [failure budget](Fleet::max_failures)). A run
    /// cut off half way is run again: tenants it finished cost one read.
    ///
    /// # Errors
    ///
    /// As [`status`](Fleet::status); nothing is written then.
    pub async fn apply(&self) -> Result<FleetReport, Error> {
        let tenants = self.prepare().await?;
        let total = tenants.len();
        let ended = AtomicUsize::new(0);
        let canaries = self.canary.min(total);
        let mut reports = Vec::with_capacity(total);
        let mut rest = tenants.into_iter();
        for name in rest.by_ref().take(canaries) {
            let report = self.apply_tenant(&name).await;
            self.ended(&report, &ended, total);
            let canary_failed = report.outcome == Outcome::Failed;
            reports.push(report);
            if canary_failed {
                for name in rest.by_ref() {
                    let report = TenantReport::new(&name, Outcome::Skipped);
                    self.ended(&report, &ended, total);
                    reports.push(report);
                }
                return Ok(FleetReport::of(reports));
            }
        }
        let failures = AtomicUsize::new(0);
        let halted = AtomicBool::new(false);
        let budget = self.max_failures.unwrap_or(usize::MAX);
        let others = stream::iter(rest)
            .map(|name| {
                let (failures, halted, ended) = (&failures, &halted, &ended);
                async move {
                    // Checked as the tenant would start: no new tenant once
                    // the budget is spent, or once a failure said that no
                    // tenant can be migrated.
                    let report = if failures.load(Ordering::SeqCst) > budget || halted.load(Ordering::SeqCst)
                    {
                        TenantReport::new(&name, Outcome::Skipped)
                    } else {
                        self.apply_tenant(&name).await
                    };
                    if report.outcome == Outcome::Failed {
                        failures.fetch_add(1, Ordering::SeqCst);
                        if report.error.as_ref().is_some_and(|error| fleet_wide(error.kind)) {
                            halted.store(true, Ordering::SeqCst);
                        }
                    }
                    self.ended(&report, ended, total);
                    report
                }
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        reports.extend(others);
        Ok(FleetReport::of(in_order(reports)))
    }

    /// Refuses a bad configuration, then lists the tenants: all before
    /// anything is written.
    async fn prepare(&self) -> Result<Vec<String>, Error> {
        if self.concurrency == 0 {
            return Err(Error::Configuration {
                reason: "a concurrency of 0 would migrate no tenant; give at least 1".to_owned(),
            });
        }
        self.manager.check_configuration()?;
        self.manager.ordered()?;
        self.tenants().await
    }

    /// The manager of tenant `name`: the fleet's settings and client.
    fn tenant(&self, name: &str) -> SchemaManager {
        let db = self.manager.database().client().database(name);
        self.manager
            .for_database(db)
            .wait_for_background(true)
            .lock_wait_timeout(self.lock_wait.unwrap_or_else(|| {
                let lease = self.manager.lease();
                Self::DEFAULT_LOCK_WAIT.max(lease.saturating_add(lease / 5))
            }))
    }

    /// Applies what tenant `name` lacks, within a span of its own.
    async fn apply_tenant(&self, name: &str) -> TenantReport {
        let manager = self.tenant(name);
        let applied = manager
            .apply_all()
            .instrument(info_span!("fleet_tenant", database = %name))
            .await;
        match applied {
            Ok(report) if report.applied.is_empty() => TenantReport::new(name, Outcome::UpToDate),
            Ok(report) => {
                let mut tenant = TenantReport::new(name, Outcome::Applied);
                tenant.applied = report.applied;
                tenant
            }
            Err(Error::LockTimeout { .. } | Error::LockHeld { .. }) => {
                TenantReport::new(name, Outcome::Locked)
            }
            Err(error) => failed(name, &error),
        }
    }

    /// Tells the observers that `report`'s tenant ended.
    fn ended(&self, report: &TenantReport, ended: &AtomicUsize, total: usize) {
        let done = ended.fetch_add(1, Ordering::SeqCst) + 1;
        for observe in &self.observers {
            observe(report, done, total);
        }
    }
}

/// Whether an error of `kind` would meet every tenant alike: the server
/// cannot be reached or refuses the client, the lease cannot be renewed,
/// the configuration is refused. The run then starts no other tenant.
fn fleet_wide(kind: &str) -> bool {
    matches!(
        kind,
        "server_unreachable"
            | "host_not_found"
            | "auth_failed"
            | "tls_failed"
            | "replica_set_mismatch"
            | "lease_renewal"
            | "configuration"
    )
}

/// Tenant `name`'s report of `error`.
fn failed(name: &str, error: &Error) -> TenantReport {
    let mut report = TenantReport::new(name, Outcome::Failed);
    report.error = Some(TenantError {
        kind: error.kind(),
        message: chain(error),
    });
    report
}

/// `reports` in their tenants' name order.
fn in_order(mut reports: Vec<TenantReport>) -> Vec<TenantReport> {
    reports.sort_by(|a, b| a.database.cmp(&b.database));
    reports
}
