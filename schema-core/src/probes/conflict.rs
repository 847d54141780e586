//! `index_conflict`: an index already there with the declared name or keys
//! and other options. `createIndexes` refuses the whole request
//! (IndexOptionsConflict, IndexKeySpecsConflict), so the migration fails.
//! Read from the listing preflight made; no command of its own.

use mongodb::bson::Document;

use crate::assess::drift::LiveCollection;
use crate::assess::preflight::{Code, Observed};
use crate::declare::indexes::conflict::find_conflicts;

/// The conflict between the declared `spec` and the indexes `live` has.
pub(super) fn probe(collection: &str, spec: &Document, live: &LiveCollection) -> Option<Observed> {
    let conflict = find_conflicts(std::slice::from_ref(spec), &live.indexes)
        .into_iter()
        .next()?;
    let message = format!(
        "the index `{}` is already there as `{}` with other options ({}): the migration fails; \
         drop the existing index first (in an earlier migration), or declare it as it is",
        conflict.index,
        conflict.existing,
        conflict.differences.join("; ")
    );
    Some(Observed::found(
        Code::IndexConflict,
        collection,
        Some(&conflict.index),
        0,
        message,
        Vec::new(),
    ))
}
