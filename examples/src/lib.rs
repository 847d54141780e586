//! The MongoDB schema of an event-driven backend (an API and its workers),
//! declared as `schema-core` migrations.
//!
//! Each module owns the collections of one part of the application. Linking
//! this crate registers its migrations; `main.rs` applies them at start, as
//! every process of the application would.

pub mod schema;

use std::time::Duration;

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::options::IndexOptions;
use schema_core::mongodb::{Database, IndexModel};

/// An index on `keys`, with the given options.
fn index(keys: Document, options: IndexOptions) -> IndexModel {
    IndexModel::builder().keys(keys).options(options).build()
}

/// A unique index on one field.
fn unique(field: &str) -> IndexModel {
    index(doc! { field: 1 }, IndexOptions::builder().unique(true).build())
}

/// A compound index on `field` and the newest `at` first.
fn newest_first(field: &str, at: &str) -> IndexModel {
    index(doc! { field: 1, at: -1 }, IndexOptions::default())
}

/// A TTL index: documents expire `after` the date in `field`.
fn expires(field: &str, after: Duration) -> IndexModel {
    index(
        doc! { field: 1 },
        IndexOptions::builder().expire_after(after).build(),
    )
}

/// Creates `indexes` on `collection` in one `createIndexes` command.
async fn create_indexes(
    db: &Database,
    collection: &str,
    indexes: impl IntoIterator<Item = IndexModel>,
) -> Result<(), schema_core::mongodb::error::Error> {
    db.collection::<Document>(collection)
        .create_indexes(indexes)
        .await?;
    Ok(())
}
