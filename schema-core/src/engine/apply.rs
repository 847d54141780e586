//! The apply loop: under the lock, run each pending migration in order,
//! fence its completion in the lock, then record it.

use tracing::{info, warn};

use super::{Engine, vet_stored};
use crate::assess::report::{self, ApplyReport};
use crate::declare::capture::{self, Declared};
use crate::declare::registry::{Body, Migration};
use crate::lock::Held;
use crate::stored::lock::{Completion, Lane};
use crate::stored::record::Stored;
use crate::support::convert;
use crate::support::error::Error;

impl Engine<'_> {
    /// Under `lane`'s lock: reads the records again, since another process
    /// may have applied migrations meanwhile, records what a previous
    /// holder completed, and applies what is still missing of `lane`'s
    /// migrations: the background ones, or the others (which come first
    /// in `ordered`, and none of which comes after a background one).
    ///
    /// # Errors
    ///
    /// Those of running and recording a migration; and, in the background
    /// lane, [`Error::Configuration`] when a migration applied at start is
    /// not recorded (forgotten meanwhile, or one an older binary runs in
    /// the background): a background migration may come after it, and
    /// `apply_all` applies it at start, under the other lock.
    pub(crate) async fn apply_pending(
        &self,
        ordered: &[&'static Migration],
        held: &mut Held<'_>,
        stored: Stored,
        noted: &str,
        lane: Lane,
    ) -> Result<ApplyReport, Error> {
        vet_stored(ordered, &stored, &self.records)?;
        let (mut pending, mut report) = report::split(ordered, &stored);
        if lane == Lane::Background
            && let Some(start) = pending.iter().find(|migration| !migration.is_background())
        {
            return Err(Error::Configuration {
                reason: format!(
                    "the background migrations wait for `{}`, which is not recorded; `apply_all` \
                     applies it at start",
                    start.id()
                ),
            });
        }
        pending.retain(|migration| Lane::of(migration) == lane);
        let first = pending.first().map(|migration| migration.id());
        if first.is_some_and(|first| first != noted) {
            // Another process applied `noted` meanwhile; with nothing left
            // at all, the release is all that follows.
            held.note_running(noted, first).await?;
        }
        let applied_by = held.owner().process();
        self.vet_transactions(&pending, held.transactions())?;
        for (index, migration) in pending.iter().enumerate() {
            let id = migration.id();
            if !held.is_live() {
                return Err(Error::LockLost {
                    id: id.to_owned(),
                    source: None,
                });
            }
            let next = pending.get(index + 1).map(|migration| migration.id());
            // A snapshot or preflight listening hears whose declarations follow.
            capture::note(self.db, || Declared::Began { id });
            let duration = match migration.body() {
                Body::InTransaction(body) if held.transactions() => {
                    // The body, the fence and the record, committed as one.
                    let duration = self
                        .run_in_transaction(migration, body, held, next, &applied_by)
                        .await?;
                    report.in_transaction.push(id.to_owned());
                    duration
                }
                _ => {
                    let duration = self.run(migration, held).await?;
                    let mut completion = Completion::ran(migration, convert::millis(duration), &applied_by);
                    if migration.is_transactional() {
                        completion = completion.in_transaction(false);
                        report.without_transaction.push(id.to_owned());
                    }
                    let fenced_at = held.fence(&completion, next).await?;
                    self.records
                        .insert(&completion, fenced_at, || held.is_live())
                        .await?;
                    held.recorded(id).await;
                    duration
                }
            };
            info!(
                migration.id = id,
                duration_ms = convert::millis(duration),
                "migration applied"
            );
            report.applied.push(id.to_owned());
            report.durations.insert(id.to_owned(), duration);
        }
        Ok(report)
    }

    /// Refuses, before anything runs, migrations declared with
    /// `transaction` where the server runs none, when the manager requires
    /// transactions; warns once otherwise: they run as plain migrations.
    fn vet_transactions(&self, pending: &[&'static Migration], transactions: bool) -> Result<(), Error> {
        let declared: Vec<String> = pending
            .iter()
            .filter(|migration| migration.is_transactional())
            .map(|migration| migration.id().to_owned())
            .collect();
        if declared.is_empty() || transactions {
            return Ok(());
        }
        if self.require_transactions {
            return Err(Error::Configuration {
                reason: format!(
                    "`{}` declared with `transaction`, and the server runs no transaction (a \
                     standalone server): `require_transactions` refuses to run them without one; apply \
                     them to a replica set or a sharded cluster",
                    declared.join("`, `")
                ),
            });
        }
        warn!(
            migrations = ?declared,
            "the server runs no transaction (a standalone server): migrations declared with \
             `transaction` run as plain migrations, their writes made one by one, and their records \
             say so"
        );
        Ok(())
    }
}
