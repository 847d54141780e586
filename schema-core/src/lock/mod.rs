//! The schema lock: a lease in its own collection (`schema_lock` by
//! default), so that of many processes starting at once exactly one
//! applies migrations, and a process that dies holding it blocks the others
//! only until its lease runs out.
//!
//! The lock document ([`crate::stored::lock`]) is one versioned state:
//! lease, ledger, running migration and backfill checkpoints.
//!
//! - **Taking it** ([`acquire`]) is an insert of a document with a fixed
//!   `_id`: the unique `_id` index decides between processes racing for
//!   it. Taking over an ended lease is a compare-and-swap on the holder and
//!   the version, so of several processes noticing the end only one wins.
//!   A write of unknown outcome is settled by the next look, from the owner
//!   id that is new for every acquisition.
//! - **Time** is the server's: expiry is `renewed_at + lease_ms`, where
//!   `renewed_at` is written from the server's clock (`hello`'s `localTime`
//!   on insert, `$currentDate` afterwards) and compared with the server's
//!   `localTime`. The holder also keeps its own, earlier, view of its lease
//!   ([`clock`]) and stops once that runs out.
//! - **Holding** it ([`held`]): every write of the holder goes through one
//!   [`writer`], one at a time, each filtered on the version before it, so
//!   a write sent earlier never lands over a later one, and a write whose
//!   reply was lost is settled by reading the document back before
//!   anything else is sent. Renewals ([`renewal`]) are such writes, from
//!   outside the migration's task.
//! - **Fencing**: a migration is complete only once one such write adds it
//!   to the ledger `done` ([`Held::fence`]). Its record in the versions
//!   collection follows from the ledger, so a process that takes over
//!   records what the previous holder completed instead of running it
//!   again, and a holder that lost its lease can never record anything.
//!   The holder's next write drops an entry whose record landed; whoever
//!   takes the lock records and clears what is left before anything else.
//! - **Checkpoints** of the backfills inside a migration are written the
//!   same way ([`checkpoints`]): only the holder moves them, the next
//!   holder resumes from them, and the fence of the migration's completion
//!   removes them.
//!
//! The states of the lock document, and the writes allowed in each, are
//! drawn in `RELIABILITY.md`.

mod acquire;
mod checkpoints;
mod clock;
mod held;
mod renewal;
mod transaction;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Collection, Database};
use tracing::warn;

pub(crate) use checkpoints::{Checkpoints, NotStaged};
pub(crate) use held::Held;

use self::acquire::{Deployment, Stop};
use self::clock::{LeaseClock, Stamp};
use self::renewal::{Renewal, Target};
use self::writer::Writer;
use crate::assess::report::Interrupted;
use crate::assess::status::{BackfillStatus, LockStatus};
use crate::stored::lock::{self as format, LockDocument, Phase};
use crate::support::error::Error;
use crate::support::faults::{bookkeeping, within};
use crate::support::owner::Owner;

/// The shortest lease on a sharded cluster: there the end of a lease is
/// judged by a mongos's clock while renewals are stamped by a shard
/// primary's, so the holder stops [`SHARDED_CLOCK_MARGIN`] early, and the
/// lease must be long enough for that to be a small part of it.
pub(crate) const MIN_SHARDED_LEASE: Duration = Duration::from_secs(10);

/// How much earlier than its lease a holder on a sharded cluster stops:
/// the largest difference between the clocks of mongos routers and shard
/// primaries that the lock tolerates.
pub(crate) const SHARDED_CLOCK_MARGIN: Duration = Duration::from_secs(1);

/// One process's handle on the lock guarding one versions collection.
pub(crate) struct Lock {
    db: Database,
    collection: Collection<Document>,
    /// The lock document's `_id`: the versions collection's name, so
    /// managers of different versions collections do not block each other.
    key: String,
    lease: Duration,
    /// When set, renewals use a client of their own built from these.
    renewal_client: Option<ClientOptions>,
}

impl Lock {
    pub(crate) fn new(
        db: &Database,
        collection: &str,
        key: &str,
        lease: Duration,
        renewal_client: Option<ClientOptions>,
    ) -> Lock {
        Lock {
            db: db.clone(),
            collection: bookkeeping(db, collection, lease / 3),
            key: key.to_owned(),
            lease,
            renewal_client,
        }
    }

    /// How long one command on the lock may take: a third of the lease, so
    /// an attempt that hangs is abandoned while the lease still has time
    /// for another.
    fn attempt_bound(&self) -> Duration {
        self.lease / 3
    }

    /// The lock is this process's from a write sent at `sent`: start
    /// renewing it. `previous` is the holder it was taken over from.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseRenewal`] when renewals cannot start; the lock is let
    /// go.
    async fn hold(
        &self,
        owner: Owner,
        sent: Stamp,
        document: LockDocument,
        previous: Option<LockDocument>,
        deployment: Deployment,
    ) -> Result<Held<'_>, Error> {
        let margin = if deployment.mongos {
            SHARDED_CLOCK_MARGIN
        } else {
            Duration::ZERO
        };
        let clock = Arc::new(LeaseClock::new(self.lease, margin, sent));
        let poll = (self.lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let writer = Arc::new(Writer::new(&document, clock, self.attempt_bound(), poll));
        let ledger_time = previous
            .as_ref()
            .map_or(document.renewed_at, |previous| previous.renewed_at);
        let interrupted = previous
            .filter(|previous| previous.phase == Phase::Held)
            .map(|previous| {
                let interrupted = Interrupted {
                    lease_ended_at: previous.expires_at(),
                    previous_owner: previous.owner,
                    migration: previous.running,
                    recorded: Vec::new(),
                };
                warn!(
                    previous_owner = %interrupted.previous_owner,
                    interrupted_migration = interrupted.migration.as_deref().unwrap_or("none"),
                    lease_ended_at = %interrupted.lease_ended_at,
                    "took over the schema lock from a process whose lease ended"
                );
                interrupted
            });
        let target = Target {
            database: self.db.name().to_owned(),
            collection: self.collection.name().to_owned(),
            write_timeout: self.attempt_bound(),
        };
        let renewal = Renewal::start(
            writer.clone(),
            self.renewal_client.clone(),
            &self.collection,
            target,
        )
        .await;
        let mut held = Held {
            lock: self,
            writer,
            owner,
            renewal: None,
            interrupted,
            inherited: document.done,
            ledger_time,
            transactions: deployment.transactions,
        };
        match renewal {
            Ok(renewal) => {
                held.renewal = Some(renewal);
                Ok(held)
            }
            Err(error) => {
                held.release().await;
                Err(error)
            }
        }
    }

    /// Who holds the lock now, judged by the server's clock; `None` when
    /// nobody does.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedLock`] naming the field when the lock document
    /// has another shape; [`Error::Database`] and [`Error::ServerTimeout`].
    pub(crate) async fn status(&self) -> Result<Option<LockStatus>, Error> {
        let bound = self.attempt_bound();
        let now = self.server_clock(bound).await.map_err(Stop::into_error)?.now;
        let Some(holder) = self.read(bound).await.map_err(Stop::into_error)? else {
            return Ok(None);
        };
        Ok(Some(LockStatus {
            backfills: backfills(&holder),
            expired: holder.has_ended(now),
            released: holder.phase == Phase::Released,
            lease_ends_at: holder.expires_at(),
            unrecorded: holder.done.iter().map(|done| done.id.clone()).collect(),
            version: holder.version,
            owner: holder.owner,
            host: holder.host,
            pid: holder.pid,
            since: holder.acquired_at,
            running: holder.running,
            renewed_at: holder.renewed_at,
        }))
    }

    /// The checkpoints of the backfills the lock holds, for
    /// [`SchemaManager::status`](crate::SchemaManager::status). A lock of
    /// another shape shows none, with a warning: status is no place to fail
    /// over the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub(crate) async fn backfills(&self) -> Result<Vec<BackfillStatus>, Error> {
        match self.read(self.attempt_bound()).await {
            Ok(holder) => Ok(holder.as_ref().map(backfills).unwrap_or_default()),
            Err(Stop::Fatal(error @ Error::MalformedLock { .. })) => {
                warn!(%error, "the schema lock is malformed; its backfills are not shown");
                Ok(Vec::new())
            }
            Err(stop) => Err(stop.into_error()),
        }
    }

    /// Deletes the lock document, whoever holds it and whatever its shape.
    /// Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub(crate) async fn remove(&self) -> Result<bool, Error> {
        let removal = self.collection.delete_one(doc! { "_id": &self.key });
        let result = within(self.attempt_bound(), removal)
            .await
            .map_err(|failure| failure.into_error("remove the schema lock"))?;
        Ok(result.deleted_count == 1)
    }

    /// The lock document, if there is one.
    async fn read(&self, bound: Duration) -> Result<Option<LockDocument>, Stop> {
        match within(bound, self.collection.find_one(doc! { "_id": &self.key })).await {
            Ok(Some(document)) => self.parse(&document).map(Some).map_err(Stop::Fatal),
            Ok(None) => Ok(None),
            Err(failure) if failure.is_transient() => Err(Stop::Transient {
                action: "read the schema lock",
                failure,
            }),
            Err(failure) => Err(Stop::Fatal(failure.into_error("read the schema lock"))),
        }
    }

    fn parse(&self, document: &Document) -> Result<LockDocument, Error> {
        format::read(document).map_err(|reason| Error::MalformedLock {
            collection: self.collection.name().to_owned(),
            reason,
        })
    }
}

/// The lock's checkpoints as an operator reads them.
fn backfills(holder: &LockDocument) -> Vec<BackfillStatus> {
    holder
        .checkpoints
        .iter()
        .map(|checkpoint| BackfillStatus::of(checkpoint, &holder.owner, holder.checkpointed_at))
        .collect()
}
