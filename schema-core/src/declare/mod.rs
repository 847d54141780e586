//! What an application declares, and nothing it does to a database: the
//! registry of `#[migration]` functions, the sets made of them, the order
//! they run in, the index and validator helpers migrations call, and the
//! snapshot of the schema those helpers declare (`capture` listens to them
//! while a snapshot is taken), and the commands heard then made into what
//! a migration would send (`heard`).

pub(crate) mod capture;
pub(crate) mod heard;
pub mod indexes;
pub(crate) mod order;
pub(crate) mod registry;
pub(crate) mod set;
pub(crate) mod snapshot;
pub(crate) mod validator;
