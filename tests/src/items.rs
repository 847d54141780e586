//! Documents `{ _id, n: 0, k }` for the backfill tests, and a tally of
//! what the backfills did to them: how many have each `n`.

use std::collections::BTreeMap;

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};

/// Integer `_id`s for the tests: from 10,000, so every one has five digits.
/// The emulator the tests may run on sorts integer `_id`s as text in some
/// queries and as numbers in others; with equal digit counts both orders
/// agree. MongoDB sorts them as numbers, whatever their digits.
pub fn integers(count: i32) -> impl Iterator<Item = Bson> {
    (10_000..10_000 + count).map(Bson::Int32)
}

/// Inserts one document `{ _id, n: 0, k }` per id, in chunks.
///
/// # Panics
///
/// When the server refuses.
pub async fn insert(db: &Database, collection: &str, ids: impl IntoIterator<Item = Bson>) {
    let documents: Vec<Document> = ids
        .into_iter()
        .enumerate()
        .map(|(index, id)| doc! { "_id": id, "n": 0, "k": (index % 3) as i32 })
        .collect();
    for chunk in documents.chunks(5_000) {
        db.collection::<Document>(collection)
            .insert_many(chunk.to_vec())
            .await
            .expect("insert the documents");
    }
}

/// How many documents of `collection` have each value of `n`.
///
/// # Panics
///
/// When a document's `n` is not an integer.
pub async fn tally(db: &Database, collection: &str) -> BTreeMap<i64, u64> {
    let mut tally = BTreeMap::new();
    for document in crate::documents(db, collection).await {
        let n = match document.get("n") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            other => panic!("n is {other:?} in {document:?}"),
        };
        *tally.entry(n).or_insert(0) += 1;
    }
    tally
}

/// Adds 1 to `n` of every document of `items`, `batch_size` at a time, as a
/// backfill under the migration that calls it: the body of the backfill
/// tests' migrations.
///
/// # Errors
///
/// The backfill's.
pub async fn count_each(db: &Database, batch_size: u32) -> Result<(), schema_core::Error> {
    schema_core::data::Backfill::new(db, "items")
        .update(doc! { "$inc": { "n": 1 } })
        .batch_size(batch_size)
        .run()
        .await?;
    Ok(())
}
