//! What a live database has, read-only: its declared collections' indexes
//! and validators (`collections`), and the index builds in progress on it
//! (`index_builds`).

pub(crate) mod collections;
pub(crate) mod index_builds;
