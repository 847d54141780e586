//! What a backfill knows of the migration it runs in: the manager sets it,
//! as a task-local value, around the migration's future, so the builder
//! needs nothing but the `Database` the migration was given.
//!
//! It is visible in the migration's own task only: a backfill run in a task
//! the migration spawns runs without checkpoints, as one outside any
//! manager does.

use std::future::Future;
use std::sync::Arc;

use super::progress::Observer;
use crate::lock::Checkpoints;

/// A migration running under the lease.
pub(crate) struct Managed {
    pub(crate) checkpoints: Checkpoints,
    pub(crate) observers: Vec<Observer>,
}

tokio::task_local! {
    static MANAGED: Arc<Managed>;
}

/// Runs `migration` with `managed` visible to the backfills inside it.
pub(crate) fn scope<F: Future>(managed: Managed, migration: F) -> impl Future<Output = F::Output> {
    MANAGED.scope(Arc::new(managed), migration)
}

/// The migration this task runs under the lease, if any.
pub(crate) fn current() -> Option<Arc<Managed>> {
    MANAGED.try_with(Arc::clone).ok()
}
