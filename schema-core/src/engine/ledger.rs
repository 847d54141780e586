//! Recovering the ledger: what a previous holder of the lock completed and
//! fenced but did not record.

use std::collections::HashSet;

use tracing::info;

use crate::lock::Held;
use crate::records::Records;
use crate::stored::record::{Stored, VersionRecord};
use crate::support::error::Error;

/// Records every completion in the lock's ledger that the versions
/// collection lacks (a previous holder fenced them, then died or lost
/// its connection), clears the ledger, and returns the records as they
/// now are. Only then may an operator command remove a record: a stale
/// entry left in the ledger would record again what it removed.
pub(super) async fn finish(records: &Records, held: &mut Held<'_>) -> Result<Stored, Error> {
    let mut stored = records.read_all().await?;
    let mut recorded_now = Vec::new();
    for done in held.inherited().to_vec() {
        if !stored.records.iter().any(|record| record.id == done.id) {
            // The ledger keeps no time per entry; the previous holder's
            // last renewal, by the server's clock, is no earlier than
            // the fence.
            let applied_at = held.ledger_time();
            records.insert(&done, applied_at, || held.is_live()).await?;
            info!(migration.id = %done.id, "recorded a migration the previous holder completed");
            stored.records.push(VersionRecord::of(&done, applied_at));
            recorded_now.push(done.id.clone());
        }
        held.recorded(&done.id).await;
    }
    held.clear_ledger().await?;
    let fenced: HashSet<String> = held.inherited().iter().map(|done| done.id.clone()).collect();
    if let Some(interrupted) = held.interrupted_mut() {
        interrupted.recorded = recorded_now;
        // A migration noted as running but fenced since did not stop
        // half way.
        if interrupted
            .migration
            .as_ref()
            .is_some_and(|id| fenced.contains(id))
        {
            interrupted.migration = None;
        }
    }
    Ok(stored)
}
