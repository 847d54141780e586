//! Marking migrations applied without running them: each pending one is
//! fenced and recorded like a completed migration, a drifted one gets its
//! current checksum.

use std::collections::HashSet;

use tracing::info;

use super::{Engine, vet_stored};
use crate::assess::status::{self, State};
use crate::declare::registry::Migration;
use crate::lock::Held;
use crate::stored::lock::Completion;
use crate::stored::record::Stored;
use crate::support::error::Error;

impl Engine<'_> {
    /// Under the lock: records `wanted` (a migration and what it depends
    /// on) as applied, in order; returns the ids it changed.
    pub(crate) async fn mark(
        &self,
        ordered: &[&'static Migration],
        wanted: &HashSet<&str>,
        held: &mut Held<'_>,
        stored: Stored,
    ) -> Result<Vec<String>, Error> {
        vet_stored(ordered, &stored, &self.records)?;
        let status = status::status(ordered, &stored);
        let applied_by = held.owner().process();
        let mut changed = Vec::new();
        for (migration, state) in ordered.iter().zip(status.migrations.iter().map(|m| &m.state)) {
            let id = migration.id();
            if !wanted.contains(id) {
                continue;
            }
            match state {
                State::Pending => {
                    let completion = Completion::marked(migration, &applied_by);
                    let fenced_at = held.fence(&completion, None).await?;
                    self.records
                        .insert(&completion, fenced_at, || held.is_live())
                        .await?;
                    held.recorded(id).await;
                }
                State::Drifted { .. } => {
                    held.note_running(id, None).await?;
                    self.records.accept_checksum(migration).await?;
                }
                _ => continue,
            }
            info!(
                migration.id = id,
                "marked migration as applied without running it"
            );
            changed.push(id.to_owned());
        }
        Ok(changed)
    }
}
