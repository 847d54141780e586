//! Running migrations under the lock. Each operation of the manager hands
//! the engine its work; the engine takes the lock, first records what a
//! previous holder completed (`ledger`), runs the work and lets the lock
//! go, whatever the work returned. The work is applying what is pending
//! (`apply`, each migration run by `run`) or marking migrations applied
//! without running them (`mark`).

mod apply;
mod ledger;
mod mark;
mod run;
mod transaction;

use std::time::Duration;

use mongodb::Database;

use crate::assess::report::Interrupted;
use crate::data::Observer;
use crate::declare::registry::Migration;
use crate::lock::{Held, Lock};
use crate::records::Records;
use crate::stored::record::Stored;
use crate::support::error::Error;

/// What running migrations under the lock needs: the database, its
/// records and lock, and who hears of the backfills' progress.
pub(crate) struct Engine<'m> {
    pub(crate) db: &'m Database,
    pub(crate) records: Records,
    pub(crate) lock: Lock,
    pub(crate) observers: &'m [Observer],
    /// Refuse to run a migration declared with `transaction` where the
    /// server runs no transaction.
    pub(crate) require_transactions: bool,
}

impl Engine<'_> {
    /// Takes the lock (waiting up to `wait`, noting `running` as the
    /// migration about to run), records what a previous holder completed,
    /// runs `work` with the records as they then are, and releases the lock
    /// whatever `work` returned. Returns `work`'s output and, when the lock
    /// was taken over from a holder whose lease had ended, that takeover.
    pub(crate) async fn under_lock<T>(
        &self,
        wait: Duration,
        running: Option<&str>,
        work: impl AsyncFnOnce(&mut Held<'_>, Stored) -> Result<T, Error>,
    ) -> Result<(T, Option<Interrupted>), Error> {
        let mut held = self.lock.acquire(wait, running).await?;
        let outcome = match ledger::finish(&self.records, &mut held).await {
            Ok(stored) => work(&mut held, stored).await,
            Err(error) => Err(error),
        };
        let interrupted = held.take_interrupted();
        held.release().await;
        Ok((outcome?, interrupted))
    }
}

/// Refuses a malformed record of a registered migration: whether it ran
/// cannot be told, and the way out is for an operator to choose.
pub(crate) fn vet_stored(
    ordered: &[&'static Migration],
    stored: &Stored,
    records: &Records,
) -> Result<(), Error> {
    let registered = |id: &str| ordered.iter().any(|migration| migration.id() == id);
    match stored
        .malformed
        .iter()
        .find(|malformed| malformed.id.as_deref().is_some_and(registered))
    {
        Some(malformed) => Err(records.malformed(malformed)),
        None => Ok(()),
    }
}
