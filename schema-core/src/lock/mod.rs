//! The schema lock: a lease in its own collection (`schema_lock` by
//! default), so that of many processes starting at once exactly one
//! applies migrations, and a process that dies holding it blocks the others
//! only until its lease runs out.
//!
//! - **Taking it** is an insert of a document with a fixed `_id`: the
//!   unique `_id` index decides between processes racing for it. The owner
//!   id is new for every acquisition, so a process whose insert landed but
//!   whose reply was lost recognises the lock as its own.
//! - **Time** is the server's: expiry is `renewed_at + lease_ms`, where
//!   `renewed_at` is written from the server's clock (`hello`'s `localTime`
//!   on insert, `$currentDate` afterwards) and compared with the server's
//!   `localTime`. The holder also keeps its own, earlier, view of its lease
//!   on its monotonic clock ([`clock`]) and stops once that runs out.
//! - **Taking over** an expired lease is a compare-and-swap on the holder
//!   and its `renewed_at`, so of several processes noticing the expiry only
//!   one wins.
//! - **Holding** it means renewing from outside the migration's task
//!   ([`renewal`]) and noting in `running` which migration is under way.
//! - **Fencing**: a migration is complete only once one atomic write to the
//!   lock document, filtered on the owner, adds it to the ledger `done`
//!   ([`Held::fence`]). Its record in the versions collection follows from
//!   the ledger, so a process that takes over records what the previous
//!   holder completed instead of running it again, and a holder that lost
//!   its lease can never record anything.
//! - **Checkpoints** of the backfills inside a migration are written the
//!   same way, filtered on the owner ([`checkpoint`]): only the holder
//!   moves them, the next holder resumes from them, and the fence of the
//!   migration's completion removes them.

mod checkpoint;
mod clock;
mod document;
mod renewal;

use std::collections::BTreeSet;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::{ClientOptions, FindOneAndUpdateOptions, ReturnDocument};
use mongodb::{Collection, Database};
use tracing::{debug, warn};

pub(crate) use checkpoint::{Checkpoint, Checkpoints};
pub(crate) use document::Completion;
use document::Holder;

use self::clock::LeaseClock;
use self::renewal::{Renewal, Target};
use crate::error::Error;
use crate::faults::{Failure, bookkeeping, jittered, within};
use crate::owner::Owner;

/// The shortest bound on one attempt while waiting for the lock, so that a
/// nearly spent wait still gives the server a fair chance to answer.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// A lease that ended without being released: its holder died or was cut
/// off while applying migrations, and this process took the lock over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Interrupted {
    /// The previous holder, as `host:pid:random`.
    pub previous_owner: String,
    /// The migration it had started, or was about to start, and had not
    /// completed, if any. It was not recorded, so it runs (again).
    pub migration: Option<String>,
    /// When its lease ended, by the server's clock.
    #[serde(serialize_with = "crate::json::time")]
    pub lease_ended_at: DateTime,
    /// Migrations the previous holder completed but had not recorded yet:
    /// this process recorded them without running them again.
    pub recorded: Vec<String>,
}

/// Who holds the schema lock, as
/// [`SchemaManager::lock_status`](crate::SchemaManager::lock_status) reads
/// it. Times are the server's; in JSON they are RFC 3339 strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LockStatus {
    /// The holder, as `host:pid:random`, new for every acquisition.
    pub owner: String,
    /// The holder's host name.
    pub host: Option<String>,
    /// The holder's process id.
    pub pid: Option<i64>,
    /// When it took the lock.
    #[serde(serialize_with = "crate::json::optional_time")]
    pub since: Option<DateTime>,
    /// The migration it is applying, or about to apply.
    pub running: Option<String>,
    /// When it last renewed its lease.
    #[serde(serialize_with = "crate::json::time")]
    pub renewed_at: DateTime,
    /// When its lease ends unless renewed.
    #[serde(serialize_with = "crate::json::time")]
    pub lease_ends_at: DateTime,
    /// Whether the lease has ended by the server's clock (or was let go):
    /// the next start takes the lock over.
    pub expired: bool,
    /// Migrations its holder completed and had not recorded yet; whoever
    /// takes the lock next records them.
    pub unrecorded: Vec<String>,
    /// Where the backfills of the migration it is running stand, from
    /// their checkpoints: whoever takes the lock next resumes them there.
    pub backfills: Vec<crate::data::BackfillStatus>,
}

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

/// What one attempt at the lock found.
enum Attempt {
    /// The lock is this process's, renewed by a write sent at `sent`.
    Taken {
        sent: Instant,
        document: Box<Holder>,
        previous: Option<Box<Holder>>,
    },
    /// Another process holds a live lease.
    Busy(Holder),
    /// The lock changed hands meanwhile; look again.
    Again,
}

/// Why an attempt at the lock stopped short.
enum Stop {
    /// Worth another attempt.
    Transient { action: &'static str, failure: Failure },
    /// Final.
    Fatal(Error),
}

impl Stop {
    /// As an error, for callers that do not try again.
    fn into_error(self) -> Error {
        match self {
            Stop::Transient { action, failure } => failure.into_error(action),
            Stop::Fatal(error) => error,
        }
    }
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

    /// Takes the lock, waiting up to `wait` for another holder to release
    /// it or for its lease to end, and notes `running` as the migration
    /// about to run. With a zero `wait`, a live holder is an immediate
    /// [`Error::LockHeld`].
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] naming the holder when `wait` runs out,
    /// [`Error::ServerTimeout`] or [`Error::Database`] when the server did
    /// not answer usefully for that long or refused outright, and
    /// [`Error::MalformedLock`] when the lock document has another shape.
    pub(crate) async fn acquire(&self, wait: Duration, running: Option<&str>) -> Result<Held<'_>, Error> {
        let owner = Owner::new();
        let started = Instant::now();
        // Without a wait, a live holder ends the attempt at once; a server
        // that does not answer is still given one attempt's time.
        let deadline = started
            + if wait.is_zero() {
                self.attempt_bound()
            } else {
                wait
            };
        // The send time of the first insert whose outcome is unknown: if it
        // landed, the lease started no earlier.
        let mut unknown_insert: Option<Instant> = None;
        let mut last_seen: Option<Holder> = None;
        let mut last_failure: Option<(&'static str, Failure)> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let bound = if wait.is_zero() {
                self.attempt_bound()
            } else {
                self.attempt_bound().min(remaining.max(MIN_ATTEMPT))
            };
            match self.attempt(&owner, bound, running, &mut unknown_insert).await {
                Ok(Attempt::Taken {
                    sent,
                    document,
                    previous,
                }) => return Ok(self.hold(owner, sent, *document, previous.map(|previous| *previous))),
                Ok(Attempt::Busy(holder)) if wait.is_zero() => {
                    self.forget_unknown_insert(&owner, unknown_insert).await;
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
                    self.forget_unknown_insert(&owner, unknown_insert).await;
                    return Err(error);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                self.forget_unknown_insert(&owner, unknown_insert).await;
                let waited = now - started;
                return Err(match (last_failure, last_seen) {
                    (Some((action, failure)), _) => failure.into_error(action),
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
            tokio::time::sleep(jittered(self.poll_interval()).min(deadline - now)).await;
        }
    }

    /// One look at the lock: take it if free, recognise it as this
    /// process's, or take it over if its lease ended.
    async fn attempt(
        &self,
        owner: &Owner,
        bound: Duration,
        running: Option<&str>,
        unknown_insert: &mut Option<Instant>,
    ) -> Result<Attempt, Stop> {
        let sent = Instant::now();
        let now = self.server_now(bound).await?;
        let fresh = doc! {
            "_id": &self.key,
            "owner": &owner.id,
            "host": &owner.host,
            "pid": i64::from(owner.pid),
            "acquired_at": now,
            "renewed_at": now,
            "lease_ms": lease_ms(self.lease),
            "running": running,
        };
        match within(bound, self.collection.insert_one(fresh.clone())).await {
            Ok(_) => {
                debug!(owner = %owner.id, "took the schema lock");
                let document = parse_or_stop(&self.collection, &fresh)?;
                return Ok(Attempt::Taken {
                    sent,
                    document: Box::new(document),
                    previous: None,
                });
            }
            Err(failure) if failure.is_duplicate_key() => {}
            Err(failure) if failure.is_transient() => {
                unknown_insert.get_or_insert(sent);
                return Err(Stop::Transient {
                    action: "take the schema lock",
                    failure,
                });
            }
            Err(failure) => return Err(Stop::Fatal(failure.into_error("take the schema lock"))),
        }
        // Someone holds it. `now` is from before the insert, so comparing
        // with it errs on the side of a lease that has not ended yet.
        let Some(holder) = self.read(bound).await? else {
            return Ok(Attempt::Again); // Released in between.
        };
        if holder.owner == owner.id {
            // An earlier insert of ours landed though its reply was lost.
            debug!(owner = %owner.id, "the schema lock is already this process's");
            return Ok(Attempt::Taken {
                sent: unknown_insert.unwrap_or(sent),
                document: Box::new(holder),
                previous: None,
            });
        }
        if !holder.released && now <= holder.expires_at() {
            return Ok(Attempt::Busy(holder));
        }
        let sent = Instant::now();
        let taken = within(bound, self.take_over(owner, &holder, running)).await;
        match taken {
            Ok(Some(document)) => {
                let document = parse_or_stop(&self.collection, &document)?;
                Ok(Attempt::Taken {
                    sent,
                    document: Box::new(document),
                    previous: Some(Box::new(holder)),
                })
            }
            Ok(None) => Ok(Attempt::Again), // Another process took it over first.
            Err(failure) if failure.is_transient() => Err(Stop::Transient {
                action: "take over the schema lock",
                failure,
            }),
            Err(failure) => Err(Stop::Fatal(failure.into_error("take over the schema lock"))),
        }
    }

    /// Replaces `holder` with this process, unless someone changed the lock
    /// since it was read. The ledger stays: this process finishes it.
    async fn take_over(
        &self,
        owner: &Owner,
        holder: &Holder,
        running: Option<&str>,
    ) -> mongodb::error::Result<Option<Document>> {
        self.collection
            .find_one_and_update(
                doc! { "_id": &self.key, "owner": &holder.owner, "renewed_at": holder.renewed_at },
                doc! {
                    "$set": {
                        "owner": &owner.id,
                        "host": &owner.host,
                        "pid": i64::from(owner.pid),
                        "lease_ms": lease_ms(self.lease),
                        "running": running,
                    },
                    "$unset": { "released": "" },
                    "$currentDate": { "acquired_at": true, "renewed_at": true },
                },
            )
            .return_document(ReturnDocument::After)
            .await
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
        let now = self.server_now(bound).await.map_err(Stop::into_error)?;
        let document = within(bound, self.collection.find_one(doc! { "_id": &self.key }))
            .await
            .map_err(|failure| failure.into_error("read the schema lock"))?;
        let Some(document) = document else {
            return Ok(None);
        };
        let holder = parse_lock(&self.collection, &document)?;
        Ok(Some(LockStatus {
            backfills: holder.backfills(),
            expired: holder.released || now > holder.expires_at(),
            lease_ends_at: holder.expires_at(),
            unrecorded: holder.done.iter().map(|done| done.id.clone()).collect(),
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
    pub(crate) async fn backfills(&self) -> Result<Vec<crate::data::BackfillStatus>, Error> {
        let read = self.collection.find_one(doc! { "_id": &self.key });
        let document = within(self.attempt_bound(), read)
            .await
            .map_err(|failure| failure.into_error("read the schema lock"))?;
        let Some(document) = document else {
            return Ok(Vec::new());
        };
        match parse_lock(&self.collection, &document) {
            Ok(holder) => Ok(holder.backfills()),
            Err(error) => {
                warn!(%error, "the schema lock is malformed; its backfills are not shown");
                Ok(Vec::new())
            }
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

    /// The lock is this process's: start renewing it.
    fn hold(&self, owner: Owner, sent: Instant, document: Holder, previous: Option<Holder>) -> Held<'_> {
        let clock = Arc::new(LeaseClock::new(self.lease, sent));
        let ledger_time = previous
            .as_ref()
            .map_or(document.renewed_at, |previous| previous.renewed_at);
        let interrupted = previous.filter(|previous| !previous.released).map(|previous| {
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
            key: self.key.clone(),
            owner: owner.id.clone(),
            clock: clock.clone(),
        };
        let renewal = Renewal::start(target, self.renewal_client.clone(), &self.collection);
        let fenced = Fenced {
            collection: self.collection.clone(),
            filter: doc! { "_id": &self.key, "owner": &owner.id },
            clock: clock.clone(),
            bound: self.attempt_bound(),
            poll: self.poll_interval(),
        };
        Held {
            lock: self,
            fenced,
            checkpoints: Arc::new(tokio::sync::Mutex::new(document.checkpoints)),
            // The ledger in the document is a previous holder's: unrecorded
            // until the manager records it.
            unrecorded: document.done.iter().map(|done| done.id.clone()).collect(),
            ledger_time,
            ledger: document.done,
            owner,
            clock,
            renewal: Some(renewal),
            interrupted,
        }
    }

    /// Removes a lock that an insert of unknown outcome may have left, so
    /// nobody waits a whole lease for a process that gave up.
    async fn forget_unknown_insert(&self, owner: &Owner, unknown_insert: Option<Instant>) {
        if unknown_insert.is_none() {
            return;
        }
        let removal = self
            .collection
            .delete_one(doc! { "_id": &self.key, "owner": &owner.id });
        if let Err(failure) = within(self.attempt_bound(), removal).await {
            warn!(error = ?failure, "could not remove a lock this process may have taken; it ends with its lease");
        }
    }

    async fn read(&self, bound: Duration) -> Result<Option<Holder>, Stop> {
        match within(bound, self.collection.find_one(doc! { "_id": &self.key })).await {
            Ok(Some(document)) => parse_or_stop(&self.collection, &document).map(Some),
            Ok(None) => Ok(None),
            Err(failure) if failure.is_transient() => Err(Stop::Transient {
                action: "read the schema lock",
                failure,
            }),
            Err(failure) => Err(Stop::Fatal(failure.into_error("read the schema lock"))),
        }
    }

    /// The server's clock, from `hello`.
    async fn server_now(&self, bound: Duration) -> Result<DateTime, Stop> {
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
        match reply.get("localTime") {
            Some(Bson::DateTime(now)) => Ok(*now),
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

/// The lock, held by this process until [`Held::release`].
pub(crate) struct Held<'l> {
    lock: &'l Lock,
    /// Writes only this holder can make.
    fenced: Fenced,
    /// The backfill checkpoints the lock document holds, as this process
    /// last wrote or read them.
    checkpoints: Arc<tokio::sync::Mutex<Vec<Checkpoint>>>,
    owner: Owner,
    clock: Arc<LeaseClock>,
    renewal: Option<Renewal>,
    interrupted: Option<Interrupted>,
    /// Every completion in the lock document's ledger.
    ledger: Vec<Completion>,
    /// The server's time of the ledger's last entry, or later: the previous
    /// holder's last renewal.
    ledger_time: DateTime,
    /// Ledger entries not known to be recorded: while any remain, releasing
    /// keeps the ledger for the next holder.
    unrecorded: BTreeSet<String>,
}

impl Held<'_> {
    /// Who holds the lock: `host:pid` for records' `applied_by`.
    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The takeover that gave this process the lock, if it was one.
    pub(crate) fn interrupted_mut(&mut self) -> Option<&mut Interrupted> {
        self.interrupted.as_mut()
    }

    pub(crate) fn take_interrupted(&mut self) -> Option<Interrupted> {
        self.interrupted.take()
    }

    /// Completions in the ledger, a previous holder's included.
    pub(crate) fn ledger(&self) -> &[Completion] {
        &self.ledger
    }

    /// When the ledger's completions were fenced, at the latest, by the
    /// server's clock.
    pub(crate) fn ledger_time(&self) -> DateTime {
        self.ledger_time
    }

    /// Whether the lease is still this process's by its own clock.
    pub(crate) fn is_live(&self) -> bool {
        self.clock.is_live()
    }

    /// Notes that the completion `id` is recorded in the versions
    /// collection.
    pub(crate) fn recorded(&mut self, id: &str) {
        self.unrecorded.remove(id);
    }

    /// Where the backfills of `migration` save their checkpoints while it
    /// runs under this lease, resuming from those a previous holder saved.
    pub(crate) fn checkpoints(&self, migration: &crate::registry::Migration) -> Checkpoints {
        Checkpoints::new(
            self.fenced.clone(),
            migration,
            self.owner.process(),
            self.checkpoints.clone(),
        )
    }

    /// Runs `work` while the lease lasts. Returns `None`, having dropped
    /// `work` at its next await, once the lease is lost or runs out by this
    /// process's own clock: whatever `work` would do after that may
    /// overlap with another process's run.
    pub(crate) async fn hold_while<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        tokio::select! {
            biased;
            output = &mut work => Some(output),
            () = self.clock.ended() => None,
        }
    }

    /// Fences the completion of a migration: writes the ledger, with it
    /// added, in one write that only the current holder's can match, notes
    /// `next` as running (clearing it when there is none) and renews the
    /// lease. Returns the server's time of the fence, the record's
    /// `applied_at`.
    ///
    /// The ledger written holds only completions not yet recorded (usually
    /// just this one), so it stays small however many migrations run, and
    /// a retried fence writes the same ledger again.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease ended by this process's clock or
    /// the lock is another's: the completion is not fenced and must not be
    /// recorded. [`Error::Database`] when the server refused the write.
    pub(crate) async fn fence(
        &mut self,
        completion: &Completion,
        next: Option<&str>,
    ) -> Result<DateTime, Error> {
        let ledger: Vec<Document> = self
            .ledger
            .iter()
            .filter(|done| self.unrecorded.contains(&done.id) && done.id != completion.id)
            .chain(std::iter::once(completion))
            .map(Completion::to_entry)
            .collect();
        // The completed migration's checkpoints go with its completion;
        // those of any other migration stay for when it runs.
        let mut checkpoints = self.checkpoints.lock().await;
        let remaining: Vec<Checkpoint> = checkpoints
            .iter()
            .filter(|checkpoint| checkpoint.migration != completion.id)
            .cloned()
            .collect();
        let mut update = doc! {
            "$set": { "done": ledger, "running": next },
            "$currentDate": { "renewed_at": true },
        };
        if remaining.len() != checkpoints.len() {
            if remaining.is_empty() {
                update.insert("$unset", doc! { "checkpoints": "", "checkpointed_at": "" });
            } else if let Ok(set) = update.get_document_mut("$set") {
                set.insert("checkpoints", checkpoint::entries(&remaining));
            }
        }
        let options = FindOneAndUpdateOptions::builder()
            .projection(doc! { "renewed_at": 1 })
            .return_document(ReturnDocument::After)
            .build();
        let refused = format!(
            "note the completion of `{}` in the schema lock, so it was not recorded and runs again \
             on the next start",
            completion.id
        );
        let answer = self
            .fenced
            .write(
                &completion.id,
                || refused.clone(),
                |collection, filter| {
                    collection
                        .find_one_and_update(filter, update.clone())
                        .with_options(options.clone())
                },
            )
            .await?;
        *checkpoints = remaining;
        drop(checkpoints);
        self.ledger.push(completion.clone());
        self.unrecorded.insert(completion.id.clone());
        match answer.get("renewed_at") {
            Some(Bson::DateTime(at)) => Ok(*at),
            _ => Err(Error::UnexpectedReply {
                command: "findAndModify".to_owned(),
                reason: "the schema lock came back without `renewed_at`".to_owned(),
            }),
        }
    }

    /// Confirms the lock is still this process's and notes `running`,
    /// renewing the lease. `id` names the operation in a
    /// [`Error::LockLost`].
    ///
    /// # Errors
    ///
    /// As [`fence`](Held::fence).
    pub(crate) async fn note_running(&mut self, id: &str, running: Option<&str>) -> Result<(), Error> {
        let update = doc! {
            "$set": { "running": running },
            "$currentDate": { "renewed_at": true },
        };
        self.fenced
            .write(
                id,
                || format!("confirm the schema lock is still this process's before `{id}`"),
                |collection, filter| {
                    collection
                        .find_one_and_update(filter, update.clone())
                        .projection(doc! { "_id": 1 })
                },
            )
            .await?;
        Ok(())
    }

    /// Lets the lock go: deletes it when every completion in its ledger is
    /// recorded, and otherwise marks it released with an ended lease, so
    /// the next process takes it at once and records the rest. Never fails:
    /// if the server cannot be told, the lease ends on its own.
    pub(crate) async fn release(mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.stop().await;
        }
        let filter = doc! { "_id": &self.lock.key, "owner": &self.owner.id };
        let collection = &self.lock.collection;
        // Checkpoints stay with the lock for the next holder to resume from.
        let keep = !self.unrecorded.is_empty() || !self.checkpoints.lock().await.is_empty();
        let outcome = if !keep {
            within(self.lock.attempt_bound(), collection.delete_one(filter))
                .await
                .map(drop)
        } else {
            let update = doc! { "$set": { "released": true, "lease_ms": 0_i64, "running": Bson::Null } };
            within(self.lock.attempt_bound(), collection.update_one(filter, update))
                .await
                .map(drop)
        };
        match outcome {
            Ok(()) => debug!(owner = %self.owner.id, "released the schema lock"),
            Err(failure) => warn!(
                error = ?failure,
                "could not release the schema lock; it is free again when its lease ends"
            ),
        }
    }
}

/// Writes to the lock document that only its current holder can make: each
/// is filtered on the owner, so a process whose lease was taken over
/// matches nothing and learns it lost the lock.
#[derive(Clone)]
pub(crate) struct Fenced {
    collection: Collection<Document>,
    /// The lock's `_id` and this holder's owner id.
    filter: Document,
    clock: Arc<LeaseClock>,
    /// How long one attempt may take.
    bound: Duration,
    /// How long to wait between attempts.
    poll: Duration,
}

impl Fenced {
    /// Whether the lease is still this process's by its own clock.
    pub(crate) fn is_live(&self) -> bool {
        self.clock.is_live()
    }

    /// One write filtered on this holder, retried through transient
    /// failures while the lease lasts by this process's clock. A write that
    /// matched renews the lease on that clock.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`], naming `id`, once the lease ended by this
    /// process's clock or the write matched nothing (the lock is another's);
    /// a write the server refuses outright is an [`Error::Database`] whose
    /// action is `action()`.
    pub(crate) async fn write<'a, F, C>(
        &'a self,
        id: &str,
        action: impl Fn() -> String,
        command: C,
    ) -> Result<Document, Error>
    where
        C: Fn(&'a Collection<Document>, Document) -> F,
        F: IntoFuture<Output = mongodb::error::Result<Option<Document>>>,
    {
        loop {
            if !self.clock.is_live() {
                return Err(Error::LockLost {
                    id: id.to_owned(),
                    source: None,
                });
            }
            let sent = Instant::now();
            match within(self.bound, command(&self.collection, self.filter.clone())).await {
                Ok(Some(answer)) => {
                    self.clock.renewed(sent);
                    return Ok(answer);
                }
                Ok(None) => {
                    self.clock.lose();
                    return Err(Error::LockLost {
                        id: id.to_owned(),
                        source: None,
                    });
                }
                Err(attempt) if attempt.is_transient() => {
                    warn!(error = ?attempt, migration.id = id, "could not write to the schema lock; trying again");
                    tokio::time::sleep(jittered(self.poll)).await;
                }
                Err(attempt) => return Err(attempt.into_error(action())),
            }
        }
    }
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

fn parse_or_stop(collection: &Collection<Document>, document: &Document) -> Result<Holder, Stop> {
    parse_lock(collection, document).map_err(Stop::Fatal)
}

fn parse_lock(collection: &Collection<Document>, document: &Document) -> Result<Holder, Error> {
    document::parse(document).map_err(|reason| Error::MalformedLock {
        collection: collection.name().to_owned(),
        reason,
    })
}
