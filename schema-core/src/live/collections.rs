//! The declared collections of a live database, read-only:
//! one `listCollections` for all of them (with the validators), then one
//! `listIndexes` per collection that exists, a few at a time.

use std::collections::BTreeMap;

use futures_util::{StreamExt, TryStreamExt, stream};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

use crate::assess::drift::LiveCollection;
use crate::declare::indexes::list_indexes;
use crate::support::error::Error;

/// How many `listIndexes` are in flight at once: enough to hide the round
/// trips of a database with many collections, few enough not to take every
/// connection of the pool.
const CONCURRENT_LISTINGS: usize = 8;

/// What `db` has of `collections`: an entry for each that exists.
pub(crate) async fn read(
    db: &Database,
    collections: &[&str],
) -> Result<BTreeMap<String, LiveCollection>, Error> {
    if collections.is_empty() {
        return Ok(BTreeMap::new());
    }
    let names: Vec<Bson> = collections.iter().map(|name| Bson::from(*name)).collect();
    let listed: Vec<Document> = db
        .run_cursor_command(doc! { "listCollections": 1, "filter": { "name": { "$in": names } } })
        .await
        .map_err(|error| Error::database("list the collections", error))?
        .try_collect()
        .await
        .map_err(|error| Error::database("list the collections", error))?;
    let mut found = BTreeMap::new();
    let mut with_indexes = Vec::new();
    for collection in listed {
        // Only those asked for, whatever else a server lists.
        let Some(name) = collection
            .get_str("name")
            .ok()
            .filter(|name| collections.contains(name))
        else {
            continue;
        };
        // A view has no indexes of its own, and listing them is an error.
        if collection.get_str("type") != Ok("view") {
            with_indexes.push(name.to_owned());
        }
        let options = collection.get_document("options").cloned().unwrap_or_default();
        found.insert(
            name.to_owned(),
            LiveCollection {
                indexes: Vec::new(),
                options,
            },
        );
    }
    let mut listings = stream::iter(with_indexes)
        .map(|name| async move {
            let indexes = list_indexes(db, &name).await?;
            Ok::<_, Error>((name, indexes))
        })
        .buffer_unordered(CONCURRENT_LISTINGS);
    while let Some(listing) = listings.next().await {
        let (name, indexes) = listing?;
        if let Some(collection) = found.get_mut(&name) {
            collection.indexes = indexes;
        }
    }
    Ok(found)
}
