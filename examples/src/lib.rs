//! The MongoDB schema of an event-driven backend (an API and its workers),
//! declared as `schema-core` migrations.
//!
//! Each module owns the collections of one part of the application and
//! declares their indexes and validators, one data migration (a backfill
//! of the events' `status`) and one background migration (an index for
//! tracing, built after the service is up). Linking this crate registers
//! its eleven migrations; `main.rs` applies them at start, as every
//! process of the application does.

pub mod schema;
