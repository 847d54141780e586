//! What an application declares, and nothing it does to a database: the
//! registry of `#[migration]` functions, the sets made of them, the order
//! they run in, and the index and validator helpers migrations call.

pub mod indexes;
pub(crate) mod order;
pub(crate) mod registry;
pub(crate) mod set;
pub(crate) mod validator;
