//! The apply loop: under the lock, run each pending migration in order,
//! fence its completion in the lock, then record it.

use tracing::info;

use super::{Engine, vet_stored};
use crate::assess::report::{self, ApplyReport};
use crate::declare::registry::Migration;
use crate::lock::Held;
use crate::stored::lock::Completion;
use crate::stored::record::Stored;
use crate::support::convert;
use crate::support::error::Error;

impl Engine<'_> {
    /// Under the lock: reads the records again, since another process may
    /// have applied migrations meanwhile, records what a previous holder
    /// completed, and applies what is still missing: the background
    /// migrations too when `with_background`, else only the others (which
    /// come first in `ordered`).
    pub(crate) async fn apply_pending(
        &self,
        ordered: &[&'static Migration],
        held: &mut Held<'_>,
        stored: Stored,
        noted: &str,
        with_background: bool,
    ) -> Result<ApplyReport, Error> {
        vet_stored(ordered, &stored, &self.records)?;
        let (mut pending, mut report) = report::split(ordered, &stored);
        pending.retain(|migration| with_background || !migration.is_background());
        let first = pending.first().map(|migration| migration.id());
        if first.is_some_and(|first| first != noted) {
            // Another process applied `noted` meanwhile; with nothing left
            // at all, the release is all that follows.
            held.note_running(noted, first).await?;
        }
        let applied_by = held.owner().process();
        for (index, migration) in pending.iter().enumerate() {
            let id = migration.id();
            if !held.is_live() {
                return Err(Error::LockLost {
                    id: id.to_owned(),
                    source: None,
                });
            }
            let duration = self.run(migration, held).await?;
            let completion = Completion::ran(migration, convert::millis(duration), &applied_by);
            let next = pending.get(index + 1).map(|migration| migration.id());
            let fenced_at = held.fence(&completion, next).await?;
            self.records
                .insert(&completion, fenced_at, || held.is_live())
                .await?;
            held.recorded(id).await;
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
}
