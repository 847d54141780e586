//! The integration tests, as one binary: linking the driver once instead
//! of once per file, and letting libtest run every test of every module in
//! parallel, most of them waiting on the server, a lease or a process.
//!
//! Run them through `scripts/with-mongodb`, which starts a server and sets
//! `MONGODB_URI`.
//!
//! A binary applies the migrations it links (`SchemaManager::new` applies
//! the default group, the migrations declared without `group`), and every
//! group is checked against the whole registered set of the binary. Here the
//! default group is the example application's eleven migrations, linked as an
//! application links its own (`command_counts`, `example_schema`,
//! `testing`); every module that declares migrations of its own puts them
//! in a group named after it and applies that group. The tests about the
//! whole set of a binary stay binaries of their own: `collected.rs`,
//! `groups.rs`, and `cycle.rs` and `unknown_dependency.rs`, whose invalid
//! sets would fail every group of the binary that links them.

// Linking the example registers its migrations: the default group of this
// binary.
use example_app as _;

mod accept;
mod apply;
mod backfill;
mod backfill_faults;
mod backfill_transactions;
mod background;
mod background_releases;
mod cli;
mod command_counts;
mod compile;
mod concurrent_starts;
mod connection_errors;
mod duplicate_ids;
mod example_schema;
mod failing_migration;
mod fleet;
mod helpers;
mod index_builds;
mod lease_faults;
mod lock;
mod lock_bounds;
mod lock_state;
mod long_history;
mod no_values;
mod operability;
mod panicking_migration;
mod plan_commands;
mod preflight;
mod preflight_data;
mod preflight_indexes;
mod preflight_usage;
mod production;
mod proxy;
mod real_server;
mod registration;
mod secrets;
mod snapshot;
mod srv;
mod testing;
mod transaction_attribute;
mod transactions;
mod workflow;
