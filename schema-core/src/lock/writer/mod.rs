//! The holder's writes to the lock document: one at a time, each filtered
//! on the version it was built on and moving the document to the next.
//!
//! Every write of the holder (a renewal, a fence, a checkpoint, the
//! release) goes through [`Writer::write`], which holds one async mutex
//! for the whole of it, so they go out in order. Each is a single
//! `findAndModify` (or `findOneAndDelete`) whose filter is
//! `{_id, owner, version: v}` and whose update sets `version: v + 1` with
//! the number of the attempt that sent it. So:
//!
//! - a write sent earlier can never land over a later one: once any later
//!   write has landed, the version it was built on is gone;
//! - a write whose outcome is unknown (no reply in time, a lost
//!   connection, a failover) is resolved before anything else is sent, by
//!   reading the document: the version says whether one of this holder's
//!   attempts landed, and `attempt` says which, so the lease is renewed
//!   from that attempt's send time and the holder's view of the contents
//!   follows;
//! - a write that matches nothing means the lock is another's or gone: the
//!   lease is lost for good.
//!
//! An attempt still on its way when a later one is sent carries the same
//! version filter, so at most one of them lands; an attempt found not to
//! have landed yet is kept among the unresolved until the version moves
//! on, since it may still land.
//!
//! A write inside a transaction (a backfill's checkpoint with its batch)
//! is [`staged`]: sent the same way, with the writer held from before the
//! transaction's first statement to its end, it lands only if the
//! transaction commits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mongodb::Collection;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use tracing::warn;

mod staged;

pub(crate) use self::staged::{Hold, NotStaged, Staged};
use super::clock::{LeaseClock, Stamp};
use crate::stored::lock::{self as format, Contents, LockDocument};
use crate::support::error::Error;
use crate::support::faults::{Failure, within};
use crate::support::retry;

/// Whether a write is tried again after a failure whose outcome is
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// One attempt; a renewal tries again at its next turn.
    Once,
    /// Until it lands, the lock is found another's, or the lease ends.
    WhileLive,
}

/// What one write does to the document.
pub(crate) enum Next {
    /// Moves it to these contents.
    Contents(Contents),
    /// Lets the lock go, decided on the contents once every earlier write
    /// is settled: marks it released when its ledger holds a completion
    /// not known to be recorded or a backfill's checkpoint, for the next
    /// holder; deletes it otherwise.
    Release,
}

/// One write: what it is for, in errors and logs.
pub(crate) struct Write<'a> {
    /// The migration (or operation) it is about, named by a
    /// [`Error::LockLost`].
    pub(crate) id: &'a str,
    /// What it does, for an [`Error::Database`]: "note the completion of
    /// ...".
    pub(crate) action: &'a (dyn Fn() -> String + Sync),
    pub(crate) retry: Retry,
    /// Also stamp `checkpointed_at` with the server's time.
    pub(crate) checkpointed: bool,
}

impl<'a> Write<'a> {
    /// A write tried until it lands, the lock is found another's, or the
    /// lease ends.
    pub(crate) fn until_lost(id: &'a str, action: &'a (dyn Fn() -> String + Sync)) -> Write<'a> {
        Write {
            id,
            action,
            retry: Retry::WhileLive,
            checkpointed: false,
        }
    }

    /// Tried once.
    pub(crate) fn once(self) -> Write<'a> {
        Write {
            retry: Retry::Once,
            ..self
        }
    }

    /// Also stamps `checkpointed_at`.
    pub(crate) fn checkpointed(self) -> Write<'a> {
        Write {
            checkpointed: true,
            ..self
        }
    }
}

/// The error for a lock document that came back from a write without
/// `what`.
pub(crate) fn came_back_without(what: &str) -> Error {
    Error::UnexpectedReply {
        command: "findAndModify".to_owned(),
        reason: format!("the schema lock came back without {what}"),
    }
}

/// The holder's side of the lock document.
pub(crate) struct Writer {
    key: String,
    owner: String,
    clock: Arc<LeaseClock>,
    /// How long one command may take.
    bound: Duration,
    /// How long to wait between attempts.
    poll: Duration,
    known: tokio::sync::Mutex<Known>,
}

/// The document as this holder knows it.
struct Known {
    /// The version after the last write known to have landed.
    version: i64,
    /// The contents at that version.
    contents: Contents,
    /// Ledger entries whose records have landed: the next write drops
    /// them.
    recorded: BTreeSet<String>,
    /// Attempts at the next version whose outcome is unknown: any one of
    /// them may have landed, or may still.
    unresolved: Vec<Attempt>,
    next_attempt: i64,
}

impl Known {
    /// What a release leaves: the contents marked released when a
    /// completion not known to be recorded or a backfill's checkpoint must
    /// stay for the next holder; nothing (a deletion) otherwise.
    fn released(&self) -> Option<Contents> {
        let mut kept = self.contents.clone();
        kept.done.retain(|done| !self.recorded.contains(&done.id));
        if kept.done.is_empty() && kept.checkpoints.is_empty() {
            return None;
        }
        Some(Contents {
            phase: format::Phase::Released,
            running: None,
            ..kept
        })
    }
}

struct Attempt {
    number: i64,
    sent: Stamp,
    /// The contents it writes; `None` for a deletion.
    next: Option<Contents>,
}

/// What a look at the document said about the unresolved attempts.
enum Resolved {
    /// None has landed yet.
    NotYet,
    /// Attempt `number` landed; the document after it (none once deleted).
    Landed(i64, Option<Box<LockDocument>>),
}

impl Writer {
    /// The writer of `owner`, who holds lock `key` at `document`'s version.
    pub(crate) fn new(
        document: &LockDocument,
        clock: Arc<LeaseClock>,
        bound: Duration,
        poll: Duration,
    ) -> Writer {
        Writer {
            key: document.key.clone(),
            owner: document.owner.clone(),
            clock,
            bound,
            poll,
            known: tokio::sync::Mutex::new(Known {
                version: document.version,
                contents: document.contents(),
                recorded: BTreeSet::new(),
                unresolved: Vec::new(),
                next_attempt: document.attempt.saturating_add(1),
            }),
        }
    }

    /// The lease's clock.
    pub(crate) fn clock(&self) -> &LeaseClock {
        &self.clock
    }

    /// The contents as of the last write known to have landed.
    pub(crate) async fn contents(&self) -> Contents {
        self.known.lock().await.contents.clone()
    }

    /// Notes that ledger entry `id` is recorded: the next write drops it.
    pub(crate) async fn recorded(&self, id: &str) {
        self.known.lock().await.recorded.insert(id.to_owned());
    }

    /// Ledger entries not known to be recorded.
    pub(crate) async fn unrecorded(&self) -> Vec<String> {
        let known = self.known.lock().await;
        known
            .contents
            .done
            .iter()
            .filter(|done| !known.recorded.contains(&done.id))
            .map(|done| done.id.clone())
            .collect()
    }

    /// Sends one write: `next` gives the contents it moves the document to
    /// from the contents it finds (ledger entries already recorded are
    /// dropped on the way). Returns the document after it, or `None` once
    /// deleted. A write whose outcome was unknown and that is found to have
    /// landed renews the lease from when it was sent, which revives a
    /// lease that had ended by this process's clock if that is still in
    /// the future.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] naming `write.id` when the lease ended by this
    /// process's clock or the lock is another's (or gone): the write did
    /// not land, or not that this process can tell. [`Error::Database`]
    /// or [`Error::ServerTimeout`] when the server refused it outright, or
    /// failed it and `write.retry` is [`Retry::Once`].
    pub(crate) async fn write(
        &self,
        collection: &Collection<Document>,
        write: Write<'_>,
        next: impl Fn(&Contents) -> Next,
    ) -> Result<Option<LockDocument>, Error> {
        let mut known = self.known.lock().await;
        self.write_known(collection, &mut known, write, next).await
    }

    /// [`write`](Writer::write), with the writer already held.
    async fn write_known(
        &self,
        collection: &Collection<Document>,
        known: &mut Known,
        write: Write<'_>,
        next: impl Fn(&Contents) -> Next,
    ) -> Result<Option<LockDocument>, Error> {
        let first_of_this_write = known.next_attempt;
        // A look at the document after the lease ended, so that a write
        // found landed then still counts.
        let mut looked_after_end = false;
        loop {
            if !known.unresolved.is_empty() {
                match self.resolve(collection, known).await {
                    Ok(Resolved::Landed(number, document)) if number >= first_of_this_write => {
                        return Ok(document.map(|document| *document));
                    }
                    // Not yet, or an earlier write's: this one still goes.
                    Ok(_) => {}
                    Err(None) => return Err(self.lost(write.id)),
                    Err(Some(failure)) if write.retry == Retry::Once => {
                        return Err(failure.into_error("read the schema lock back"));
                    }
                    Err(Some(failure)) => {
                        warn!(error = ?failure, "could not read the schema lock back; trying again");
                        if !self.clock.is_live() {
                            if looked_after_end {
                                return Err(self.lost(write.id));
                            }
                            looked_after_end = true;
                        }
                        retry::pause(self.poll, None).await;
                        continue;
                    }
                }
            }
            if !self.clock.is_live() {
                return Err(self.lost(write.id));
            }
            let next = match next(&known.contents) {
                Next::Contents(mut contents) => {
                    contents.done.retain(|done| !known.recorded.contains(&done.id));
                    Some(contents)
                }
                Next::Release => known.released(),
            };
            let number = known.next_attempt;
            known.next_attempt = number.saturating_add(1);
            let sent = Stamp::now();
            // Noted before it is sent: dropped half way, the write still
            // counts as unresolved for the next one.
            known.unresolved.push(Attempt {
                number,
                sent,
                next: next.clone(),
            });
            let outcome = self
                .send(collection, known, number, next.as_ref(), write.checkpointed)
                .await;
            match outcome {
                Ok(Some(after)) => {
                    self.landed(known, number);
                    return match next {
                        Some(_) => self.parse(collection, &after).map(Some),
                        None => Ok(None),
                    };
                }
                // Matched nothing: an earlier attempt may have landed
                // meanwhile; otherwise the lock is another's.
                Ok(None) if known.unresolved.len() > 1 => {
                    retry::pause(self.poll, None).await;
                }
                Ok(None) => return Err(self.taken(write.id)),
                Err(failure) if failure.is_transient() => {
                    if write.retry == Retry::Once {
                        return Err(failure.into_error((write.action)()));
                    }
                    warn!(error = ?failure, migration.id = write.id, "could not write to the schema lock; trying again");
                    retry::pause(self.poll, None).await;
                }
                Err(failure) => {
                    // Refused: it did not land.
                    known.unresolved.retain(|attempt| attempt.number != number);
                    return Err(failure.into_error((write.action)()));
                }
            }
        }
    }

    /// One attempt at the next version.
    async fn send(
        &self,
        collection: &Collection<Document>,
        known: &Known,
        number: i64,
        next: Option<&Contents>,
        checkpointed: bool,
    ) -> Result<Option<Document>, Failure> {
        let filter = format::at_version(&self.key, &self.owner, known.version);
        let Some(next) = next else {
            return within(self.bound, collection.find_one_and_delete(filter)).await;
        };
        let mut set = known.contents.changes_to(next);
        set.extend(format::next_version(known.version, number));
        let mut stamps = doc! { "renewed_at": true };
        if checkpointed {
            stamps.insert("checkpointed_at", true);
        }
        let update = doc! { "$set": set, "$currentDate": stamps };
        let command = collection
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After);
        within(self.bound, command).await
    }

    /// Reads the document back to learn whether an unresolved attempt
    /// landed. `Err(None)` when the lock is another's or gone,
    /// `Err(Some(_))` when it could not be read.
    async fn resolve(
        &self,
        collection: &Collection<Document>,
        known: &mut Known,
    ) -> Result<Resolved, Option<Failure>> {
        let read = collection.find_one(doc! { "_id": &self.key });
        let document = within(self.bound, read).await.map_err(Some)?;
        let Some(document) = document else {
            // Gone: one of this holder's deletions, or someone else's.
            let deletion = known.unresolved.iter().find(|attempt| attempt.next.is_none());
            return match deletion.map(|attempt| attempt.number) {
                Some(number) => {
                    self.landed(known, number);
                    Ok(Resolved::Landed(number, None))
                }
                None => {
                    self.clock.lose();
                    Err(None)
                }
            };
        };
        let document = match format::read(&document) {
            Ok(document) if document.owner == self.owner => document,
            Ok(_) => {
                self.clock.lose();
                return Err(None);
            }
            Err(reason) => {
                warn!(%reason, "the schema lock was rewritten in another shape; it is no longer this process's");
                self.clock.lose();
                return Err(None);
            }
        };
        if document.version == known.version {
            return Ok(Resolved::NotYet);
        }
        let landed = known
            .unresolved
            .iter()
            .find(|attempt| attempt.number == document.attempt)
            .map(|attempt| attempt.number);
        match landed {
            Some(number) if document.version == known.version.saturating_add(1) => {
                self.landed(known, number);
                Ok(Resolved::Landed(number, Some(Box::new(document))))
            }
            _ => {
                warn!(
                    version = document.version,
                    "the schema lock was written by someone else under this process's name; it is no \
                     longer this process's"
                );
                self.clock.lose();
                Err(None)
            }
        }
    }

    /// Attempt `number` landed: the lease runs from its send time, and the
    /// document is at the next version with its contents.
    fn landed(&self, known: &mut Known, number: i64) {
        if let Some(attempt) = known.unresolved.iter().find(|attempt| attempt.number == number) {
            self.clock.renewed(attempt.sent);
            if let Some(next) = &attempt.next {
                known.contents = next.clone();
            }
        }
        known.version = known.version.saturating_add(1);
        known.unresolved.clear();
        let done = &known.contents.done;
        known
            .recorded
            .retain(|id| done.iter().any(|entry| &entry.id == id));
    }

    fn parse(&self, collection: &Collection<Document>, document: &Document) -> Result<LockDocument, Error> {
        format::read(document).map_err(|reason| Error::MalformedLock {
            collection: collection.name().to_owned(),
            reason,
        })
    }

    /// The lock is another's, for good: the lease is lost.
    pub(crate) fn lose(&self, id: &str) -> Error {
        self.taken(id)
    }

    /// A write of this holder matched nothing: the lock is another's, or
    /// gone, for good.
    fn taken(&self, id: &str) -> Error {
        self.clock.lose();
        self.lost(id)
    }

    fn lost(&self, id: &str) -> Error {
        Error::LockLost {
            id: id.to_owned(),
            source: None,
        }
    }
}
