//! Taking the lock: an insert when it is free, a compare-and-swap on its
//! holder and version when that holder's lease has ended, and patience
//! otherwise, up to the caller's wait.
//!
//! A write of this process whose outcome is unknown (an insert or a
//! takeover that got no reply in time) may have landed. The next look at
//! the lock tells: the owner id is new for every acquisition, so a lock
//! showing it is this process's, its lease counted from when the earliest
//! such write was sent, which is no later than the server stamped it. A
//! takeover found landed this way is still reported as one. A caller that
//! does not wait (`forget`, `unlock`) still gets that one look; a caller
//! that gives up with an outcome still unknown lets go of what it may hold,
//! so nobody waits a lease for it.

use std::time::{Duration, Instant};

use mongodb::bson::{Bson, DateTime, doc};
use mongodb::options::ReturnDocument;
use tracing::{debug, warn};

use super::clock::Stamp;
use super::{Held, Lock, MIN_SHARDED_LEASE, SHARDED_CLOCK_MARGIN};
use crate::stored::lock::{self as format, LockDocument, Phase};
use crate::support::convert;
use crate::support::error::Error;
use crate::support::faults::{Failure, within};
use crate::support::owner::Owner;
use crate::support::retry;
use crate::support::topology::Topology;

/// The shortest bound on one attempt while waiting for the lock, so that a
/// nearly spent wait still gives the server a fair chance to answer.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// What one attempt at the lock found.
enum Attempt {
    /// The lock is this process's, from a write sent at `sent`.
    Taken {
        sent: Stamp,
        document: Box<LockDocument>,
        /// The holder it was taken over from, if it was.
        previous: Option<Box<LockDocument>>,
        deployment: Deployment,
    },
    /// Another process holds a live lease.
    Busy(Box<LockDocument>),
    /// The lock changed hands meanwhile; look again.
    Again,
}

/// Why an attempt at the lock stopped short.
pub(super) enum Stop {
    /// Worth another attempt.
    Transient { action: &'static str, failure: Failure },
    /// Final.
    Fatal(Error),
}

impl Stop {
    /// As an error, for callers that do not try again.
    pub(super) fn into_error(self) -> Error {
        match self {
            Stop::Transient { action, failure } => failure.into_error(action),
            Stop::Fatal(error) => error,
        }
    }
}

/// A write of this process's at the lock whose outcome is unknown.
struct Unknown {
    /// When the earliest such write was sent: a lease it started began no
    /// earlier.
    sent: Stamp,
    /// The holder a takeover among them was taking the lock from.
    previous: Option<Box<LockDocument>>,
}

/// The server's clock, and what kind of deployment answered for it.
pub(super) struct ServerClock {
    pub(super) now: DateTime,
    pub(super) mongos: bool,
    /// A replica set member or a mongos: where transactions run.
    pub(super) transactions: bool,
}

/// What the holder needs to know of the deployment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deployment {
    pub(super) mongos: bool,
    pub(super) transactions: bool,
}

impl ServerClock {
    fn deployment(&self) -> Deployment {
        Deployment {
            mongos: self.mongos,
            transactions: self.transactions,
        }
    }
}

impl Lock {
    /// Takes the lock, waiting up to `wait` (forever if it is too long to
    /// count) for another holder to release it or for its lease to end,
    /// and notes `running` as the migration about to run. With a zero
    /// `wait`, a live holder is an immediate [`Error::LockHeld`].
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] naming the holder when `wait` runs out,
    /// [`Error::ServerTimeout`] or [`Error::Database`] when the server did
    /// not answer usefully for that long or refused outright,
    /// [`Error::MalformedLock`] when the lock document has another shape,
    /// [`Error::Configuration`] for a lease shorter than a sharded cluster
    /// allows, and [`Error::LeaseRenewal`] when renewals cannot start.
    pub(crate) async fn acquire(&self, wait: Duration, running: Option<&str>) -> Result<Held<'_>, Error> {
        let owner = Owner::new();
        let started = Instant::now();
        // Without a wait, a live holder ends the attempt at once; a server
        // that does not answer is still given one attempt's time. `None`:
        // a wait too long to count, which never ends.
        let deadline = started.checked_add(if wait.is_zero() {
            self.attempt_bound()
        } else {
            wait
        });
        let mut unknown: Option<Unknown> = None;
        // The look given to an unknown outcome after the deadline.
        let mut looked_past_deadline = false;
        let mut last_seen: Option<Box<LockDocument>> = None;
        let mut last_failure: Option<(&'static str, Failure)> = None;
        loop {
            let remaining = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let bound = match remaining {
                Some(remaining) if !wait.is_zero() => self.attempt_bound().min(remaining.max(MIN_ATTEMPT)),
                _ => self.attempt_bound(),
            };
            match self.attempt(&owner, bound, running, &mut unknown).await {
                Ok(Attempt::Taken {
                    sent,
                    document,
                    previous,
                    deployment,
                }) => {
                    return self
                        .hold(
                            owner,
                            sent,
                            *document,
                            previous.map(|previous| *previous),
                            deployment,
                        )
                        .await;
                }
                Ok(Attempt::Busy(holder)) if wait.is_zero() && unknown.is_none() => {
                    return Err(Error::LockHeld {
                        expires_at: holder.expires_at(),
                        holder: holder.owner,
                        running: holder.running,
                    });
                }
                Ok(Attempt::Busy(holder)) => {
                    last_seen = Some(holder);
                    last_failure = None;
                }
                Ok(Attempt::Again) => {}
                Err(Stop::Transient { action, failure }) => {
                    debug!(error = ?failure, action, "the schema lock could not be taken yet; trying again");
                    last_failure = Some((action, failure));
                }
                Err(Stop::Fatal(error)) => {
                    self.abandon(&owner, unknown.as_ref()).await;
                    return Err(error);
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                // One more look settles a write of this process whose
                // outcome is unknown; that is no wait for anyone.
                if unknown.is_some() && !looked_past_deadline {
                    looked_past_deadline = true;
                    continue;
                }
                self.abandon(&owner, unknown.as_ref()).await;
                let waited = now - started;
                return Err(match (last_failure, last_seen) {
                    (Some((action, failure)), _) => failure.into_error(action),
                    (None, Some(holder)) if wait.is_zero() => Error::LockHeld {
                        expires_at: holder.expires_at(),
                        holder: holder.owner,
                        running: holder.running,
                    },
                    (None, Some(holder)) => Error::LockTimeout {
                        expires_at: holder.expires_at(),
                        holder: holder.owner,
                        running: holder.running,
                        waited,
                    },
                    (None, None) => Error::ServerTimeout {
                        action: "take the schema lock".to_owned(),
                        waited,
                    },
                });
            }
            retry::pause(self.poll_interval(), deadline).await;
        }
    }

    /// One look at the lock: take it if free, recognise it as this
    /// process's, or take it over if its lease ended.
    async fn attempt(
        &self,
        owner: &Owner,
        bound: Duration,
        running: Option<&str>,
        unknown: &mut Option<Unknown>,
    ) -> Result<Attempt, Stop> {
        let sent = Stamp::now();
        let clock = self.server_clock(bound).await?;
        if clock.mongos && self.lease < MIN_SHARDED_LEASE {
            return Err(Stop::Fatal(Error::Configuration {
                reason: format!(
                    "a lock lease of {:?} is shorter than the {MIN_SHARDED_LEASE:?} a sharded cluster \
                     needs: there the lease's end is judged by a mongos's clock and its renewals are \
                     stamped by a shard's, and the holder stops {SHARDED_CLOCK_MARGIN:?} early to \
                     allow for the difference; give `lock_lease` at least {MIN_SHARDED_LEASE:?}",
                    self.lease
                ),
            }));
        }
        let fresh = LockDocument {
            key: self.key.clone(),
            version: 1,
            attempt: 0,
            phase: Phase::Held,
            owner: owner.id.clone(),
            host: Some(owner.host.clone()),
            pid: Some(i64::from(owner.pid)),
            acquired_at: Some(clock.now),
            renewed_at: clock.now,
            lease_ms: lease_ms(self.lease),
            running: running.map(str::to_owned),
            done: Vec::new(),
            checkpoints: Vec::new(),
            checkpointed_at: None,
        };
        match within(bound, self.collection.insert_one(fresh.to_document())).await {
            Ok(_) => {
                debug!(owner = %owner.id, "took the schema lock");
                return Ok(Attempt::Taken {
                    sent,
                    document: Box::new(fresh),
                    previous: None,
                    deployment: clock.deployment(),
                });
            }
            Err(failure) if failure.is_duplicate_key() => {}
            Err(failure) if failure.is_transient() => {
                unknown.get_or_insert(Unknown { sent, previous: None });
                return Err(Stop::Transient {
                    action: "take the schema lock",
                    failure,
                });
            }
            Err(failure) => return Err(Stop::Fatal(failure.into_error("take the schema lock"))),
        }
        // Someone holds it. `clock.now` is from before the insert, so
        // comparing with it errs on the side of a lease not yet ended.
        let Some(holder) = self.read(bound).await? else {
            return Ok(Attempt::Again); // Released in between.
        };
        if holder.owner == owner.id {
            // An earlier write of ours landed though its reply was lost.
            debug!(owner = %owner.id, "the schema lock is already this process's");
            let (sent, previous) = match unknown.take() {
                Some(unknown) => (unknown.sent, unknown.previous),
                None => (sent, None),
            };
            return Ok(Attempt::Taken {
                sent,
                document: Box::new(holder),
                previous,
                deployment: clock.deployment(),
            });
        }
        if !holder.has_ended(clock.now) {
            return Ok(Attempt::Busy(Box::new(holder)));
        }
        let sent = Stamp::now();
        match within(bound, self.take_over(owner, &holder, running)).await {
            Ok(Some(document)) => {
                let document = self.parse(&document).map_err(Stop::Fatal)?;
                Ok(Attempt::Taken {
                    sent,
                    document: Box::new(document),
                    previous: Some(Box::new(holder)),
                    deployment: clock.deployment(),
                })
            }
            Ok(None) => Ok(Attempt::Again), // Another process took it over first.
            Err(failure) if failure.is_transient() => {
                let unknown = unknown.get_or_insert(Unknown { sent, previous: None });
                unknown.previous = Some(Box::new(holder));
                Err(Stop::Transient {
                    action: "take over the schema lock",
                    failure,
                })
            }
            Err(failure) => Err(Stop::Fatal(failure.into_error("take over the schema lock"))),
        }
    }

    /// Replaces `holder` with this process, unless someone wrote the lock
    /// since it was read. The ledger and checkpoints stay: this process
    /// finishes them.
    async fn take_over(
        &self,
        owner: &Owner,
        holder: &LockDocument,
        running: Option<&str>,
    ) -> mongodb::error::Result<Option<mongodb::bson::Document>> {
        let mut set = doc! {
            "owner": &owner.id,
            "host": &owner.host,
            "pid": i64::from(owner.pid),
            "lease_ms": lease_ms(self.lease),
            "running": running,
            "phase": crate::stored::write(&Phase::Held),
        };
        set.extend(format::next_version(holder.version, 0));
        self.collection
            .find_one_and_update(
                format::at_version(&self.key, &holder.owner, holder.version),
                doc! {
                    "$set": set,
                    "$currentDate": { "acquired_at": true, "renewed_at": true },
                },
            )
            .return_document(ReturnDocument::After)
            .await
    }

    /// Lets go of a lock that a write of unknown outcome may have given
    /// this process, so nobody waits a whole lease for a process that gave
    /// up: marked released, since a takeover keeps the previous holder's
    /// ledger and checkpoints for the next one.
    async fn abandon(&self, owner: &Owner, unknown: Option<&Unknown>) {
        if unknown.is_none() {
            return;
        }
        let release = self.collection.update_one(
            doc! { "_id": &self.key, "owner": &owner.id },
            doc! {
                "$set": { "phase": crate::stored::write(&Phase::Released), "running": Bson::Null },
                "$inc": { "version": 1_i64 },
            },
        );
        if let Err(failure) = within(self.attempt_bound(), release).await {
            warn!(error = ?failure, "could not let go of a lock this process may have taken; it ends with its lease");
        }
    }

    /// The server's clock, from `hello`, and whether a mongos answered.
    pub(super) async fn server_clock(&self, bound: Duration) -> Result<ServerClock, Stop> {
        let reply = match within(bound, self.db.run_command(doc! { "hello": 1 })).await {
            Ok(reply) => reply,
            Err(failure) if failure.is_transient() => {
                return Err(Stop::Transient {
                    action: "read the server's clock",
                    failure,
                });
            }
            Err(failure) => return Err(Stop::Fatal(failure.into_error("read the server's clock"))),
        };
        let topology = Topology::of(&reply);
        let (mongos, transactions) = (topology.mongos, topology.replicated());
        match reply.get("localTime") {
            Some(Bson::DateTime(now)) => Ok(ServerClock {
                now: *now,
                mongos,
                transactions,
            }),
            _ => Err(Stop::Fatal(Error::UnexpectedReply {
                command: "hello".to_owned(),
                reason: "it has no `localTime`, which the schema lock needs as the one clock all \
                         processes share"
                    .to_owned(),
            })),
        }
    }

    /// How long to sleep, before jitter, between looks at a held lock: a
    /// tenth of the lease within 50 ms to 1 s.
    fn poll_interval(&self) -> Duration {
        (self.lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// The lease in milliseconds, as stored; a lease too long for that is
/// stored as the longest.
pub(super) fn lease_ms(lease: Duration) -> i64 {
    convert::millis(lease)
}
