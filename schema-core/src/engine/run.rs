//! Running one migration while the lease lasts: in its own span, with a
//! panic caught and reported, stopped when the lease ends, and with the
//! values a driver error quotes kept out of what is shown.

use std::time::{Duration, Instant};

use tracing::{Instrument, info, info_span, warn};

use super::Engine;
use crate::data::{self, Managed};
use crate::declare::registry::Migration;
use crate::lock::Held;
use crate::support::error::{self, BoxError, Error};
use crate::support::panic;

impl Engine<'_> {
    /// Runs `migration` while the lease lasts. Returns how long it took.
    pub(super) async fn run(&self, migration: &Migration, held: &Held<'_>) -> Result<Duration, Error> {
        let span = info_span!("migration", migration.id = migration.id());
        async {
            info!(description = migration.description(), "applying migration");
            let started = Instant::now();
            // The backfills inside save their checkpoints under this lease.
            let managed = Managed {
                checkpoints: held.checkpoints(migration),
                observers: self.observers.to_vec(),
            };
            let run = Box::pin(data::scope(managed, migration.run(self.db)));
            let outcome = held.hold_while(panic::caught(run)).await;
            let id = migration.id().to_owned();
            let failure: BoxError = match outcome {
                None => {
                    warn!("the schema lock's lease ended while the migration ran; stopped it");
                    return Err(Error::LockLost { id, source: None });
                }
                Some(Ok(Ok(()))) => return Ok(started.elapsed()),
                Some(Ok(Err(source))) => {
                    // A driver error is shown without the values it quotes.
                    let source = error::shown(source);
                    tracing::error!(error = %source, "migration failed");
                    if held.is_live() {
                        return Err(Error::MigrationFailed { id, source });
                    }
                    source
                }
                Some(Err(message)) => {
                    // A panic's message can quote a value too (an
                    // `unwrap` of a driver error prints the error).
                    let message = error::without_values(&message);
                    tracing::error!(panic = %message, "migration panicked");
                    if held.is_live() {
                        return Err(Error::MigrationPanicked { id, message });
                    }
                    Box::new(Error::MigrationPanicked {
                        id: id.clone(),
                        message,
                    })
                }
            };
            // It failed, and the lease ended meanwhile: the lost lock is the
            // news, the failure its cause.
            Err(Error::LockLost {
                id,
                source: Some(failure),
            })
        }
        .instrument(span)
        .await
    }
}
