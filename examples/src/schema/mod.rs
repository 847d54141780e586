//! One module per part of the application, each declaring the migrations
//! of the collections it owns.

pub mod events;
pub mod executions;
pub mod messaging;
pub mod notifications;
pub mod replay;
pub mod sagas;
pub mod users;
