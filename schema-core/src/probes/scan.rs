//! `collection_scan`: a backfill whose filter no index serves, read from
//! `explain`.

use mongodb::bson::Document;

use super::Probe;
use crate::assess::preflight::Observed;

/// Whether a backfill of `collection` over `filter` scans the collection.
pub(super) async fn probe(probe: &Probe, collection: &str, filter: &Document) -> Option<Observed> {
    let _ = (probe, collection, filter);
    None
}
