//! For a migration that changes the schema with a raw command instead of a
//! helper: saying what it did, so that the snapshot stays complete. Each
//! function sends nothing; it is heard only while a snapshot is taken.

use mongodb::bson::Document;
use mongodb::{Database, IndexModel};

use crate::declare::capture::{self, Declared};
use crate::declare::indexes::{self, default_name};
use crate::declare::validator::Validator;
use crate::support::error::Error;

/// Declares that `collection` of `db` has `indexes`, as if
/// [`ensure_indexes`](crate::indexes::ensure_indexes) had created them:
/// for indexes a migration creates with a raw command.
///
/// ```no_run
/// use schema_core::indexes::keys;
/// use schema_core::mongodb::bson::doc;
/// use schema_core::snapshot::declare_indexes;
///
/// # async fn places(db: &schema_core::mongodb::Database) -> Result<(), Box<dyn std::error::Error>> {
/// let spec = doc! { "key": { "location": "2dsphere" }, "name": "location_2dsphere" };
/// db.run_command(doc! { "createIndexes": "places", "indexes": [spec] }).await?;
/// declare_indexes(db, "places", [keys(doc! { "location": "2dsphere" })])?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::UnexpectedReply`] when an index cannot be encoded.
pub fn declare_indexes(
    db: &Database,
    collection: &str,
    indexes: impl IntoIterator<Item = IndexModel>,
) -> Result<(), Error> {
    let specs = indexes
        .into_iter()
        .map(|mut model| {
            let options = model.options.get_or_insert_with(Default::default);
            if options.name.is_none() {
                options.name = Some(default_name(&model.keys));
            }
            indexes::spec(&model)
        })
        .collect::<Result<Vec<Document>, Error>>()?;
    capture::note(db, || Declared::Indexes {
        collection: collection.to_owned(),
        specs,
    });
    Ok(())
}

/// Declares that `collection` of `db` has `validator`, as if
/// [`set_validator`](crate::set_validator) had set it.
pub fn declare_validator(db: &Database, collection: &str, validator: &Validator) {
    capture::note(db, || Declared::Validator {
        collection: collection.to_owned(),
        validator: validator.as_options(),
    });
}

/// Declares that the index of `collection` on `keys` is gone, as if
/// [`drop_index`](crate::indexes::drop_index) had dropped it.
pub fn declare_dropped_index(db: &Database, collection: &str, keys: Document) {
    capture::note(db, || Declared::DroppedIndex {
        collection: collection.to_owned(),
        keys,
    });
}

/// Declares that `collection` is gone, with its indexes and validator.
pub fn declare_dropped_collection(db: &Database, collection: &str) {
    capture::note(db, || Declared::DroppedCollection {
        collection: collection.to_owned(),
    });
}
