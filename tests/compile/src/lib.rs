//! Nothing to link: the cases are `ui/fail/` (checked by trybuild in
//! `tests/misuse.rs`) and `ui/pass/` (test targets of their own, see
//! `Cargo.toml`).
