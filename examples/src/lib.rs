//! The MongoDB schema of an event-driven backend (an API and its workers),
//! declared as `schema-core` migrations.
//!
//! Each module owns the collections of one part of the application and
//! declares their indexes and validators, and one data migration: a
//! backfill of the events' `status`. Linking this crate registers its ten
//! migrations; `main.rs` applies them at start, as every process of the
//! application does.

pub mod schema;
