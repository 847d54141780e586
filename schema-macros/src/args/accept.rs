//! `accept = "validator_rejects"` or `accept = ["validator_rejects",
//! "ttl_deletes"]`: the preflight findings a migration's authors have
//! weighed, by code. Each code is checked here, when compiling, against the
//! one list of them the macro crate keeps.

use syn::{Expr, ExprLit, Lit, LitStr};

use super::{list, spelling};
use crate::errors::Errors;

/// The names of the preflight codes, in the order reports list them.
///
/// The same seven, in the same order, as `schema_core::preflight::Code`
/// (`Code::ALL` and `Code::name`, in `schema-core/src/assess/preflight.rs`):
/// this crate cannot depend on schema-core, so a code added there is added
/// here too. The integration test `accept` fails while the two differ.
pub(super) const CODES: [&str; 7] = [
    "unique_duplicates",
    "index_conflict",
    "validator_rejects",
    "ttl_deletes",
    "ttl_not_dates",
    "index_in_use",
    "collection_scan",
];

/// How to write the argument, said when its value has another shape.
const SHAPE: &str = "`accept` takes a preflight code or a list of them, as string literals: \
                     `accept = \"validator_rejects\"` or `accept = [\"validator_rejects\", \"ttl_deletes\"]`";

/// The codes `value` names, each a known code listed once. A wrong code is
/// recorded and left out; so is the second of a code listed twice.
pub(super) fn codes(value: &Expr, errors: &mut Errors) -> Vec<LitStr> {
    let written: Vec<&LitStr> = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(code), ..
        }) => vec![code],
        Expr::Array(array) if array.elems.is_empty() => {
            errors.spanned(
                value,
                "`accept = []` accepts nothing; list at least one code, or leave `accept` out",
            );
            return Vec::new();
        }
        Expr::Array(array) => array
            .elems
            .iter()
            .filter_map(|element| match element {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(code), ..
                }) => Some(code),
                other => {
                    errors.spanned(other, SHAPE);
                    None
                }
            })
            .collect(),
        _ => {
            errors.spanned(value, SHAPE);
            return Vec::new();
        }
    };
    let mut codes: Vec<LitStr> = Vec::new();
    for code in written {
        let name = code.value();
        if !CODES.contains(&name.as_str()) {
            errors.spanned(code, unknown(&name));
        } else if codes.iter().any(|earlier| earlier.value() == name) {
            errors.spanned(
                code,
                format!("`{name}` is listed twice in `accept`; list each code once"),
            );
        } else {
            codes.push(code.clone());
        }
    }
    codes
}

/// What is said of `name`, which is no code: the nearest code when one is
/// near, and every code.
fn unknown(name: &str) -> String {
    let codes = list(CODES);
    if name.is_empty() {
        return format!("the preflight code is empty; expected one of {codes}");
    }
    let written = name.escape_debug();
    match spelling::nearest(name, CODES) {
        Some(near) => {
            format!("unknown preflight code `{written}`; did you mean `{near}`? expected one of {codes}")
        }
        None => format!("unknown preflight code `{written}`; expected one of {codes}"),
    }
}
