//! Reads one argument's value into its type, checking it on the way: a
//! string, an id, a group, a crate path, a list of dependencies.
//!
//! Each reader records what is wrong in `errors`, pointing at the value,
//! and returns what it could read, so that one build shows every mistake.

use syn::{Expr, ExprLit, Lit, LitStr, Path};

use crate::errors::Errors;

/// The longest id accepted, in bytes.
pub(crate) const MAX_ID_LEN: usize = 128;

/// The string literal in `value`, or a recorded mistake.
pub(super) fn string(value: &Expr, key: &str, errors: &mut Errors) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.clone()),
        _ => {
            errors.spanned(
                value,
                format!("`{key}` takes a string literal: `{key} = \"...\"`"),
            );
            None
        }
    }
}

/// `id = "0001_events"`: a migration id, checked for length and characters.
/// A wrong id is still returned, so that later checks can name it.
pub(super) fn id(value: &Expr, errors: &mut Errors) -> Option<LitStr> {
    let id = string(value, "id", errors)?;
    let text = id.value();
    if text.is_empty() {
        errors.spanned(
            &id,
            "the migration id is empty; write a short stable name such as \"0001_events\"",
        );
    } else if text.len() > MAX_ID_LEN {
        errors.spanned(
            &id,
            format!(
                "the migration id is {} bytes long; ids are at most {MAX_ID_LEN} bytes",
                text.len()
            ),
        );
    }
    if let Some(bad) = text.chars().find(|c| !is_id_char(*c)) {
        errors.spanned(
            &id,
            format!(
                "the migration id contains {bad:?}; ids use only ASCII letters, digits, `_`, `.` and `-`"
            ),
        );
    }
    Some(id)
}

/// `group = "billing"`: a group name, checked for its characters.
pub(super) fn group(value: &Expr, errors: &mut Errors) -> Option<LitStr> {
    let group = string(value, "group", errors)?;
    let text = group.value();
    if text.is_empty() {
        errors.spanned(
            &group,
            "the group is empty; write a name such as \"billing\", or leave `group` out for the default group",
        );
        return None;
    }
    if let Some(bad) = text.chars().find(|c| !is_group_char(*c)) {
        errors.spanned(
            &group,
            format!("the group contains {bad:?}; groups use only ASCII letters, digits, `_` and `-`"),
        );
        return None;
    }
    Some(group)
}

/// `crate = "schema"` or `crate = "::my::reexport::schema_core"`: a path
/// without generic arguments, spanned at the literal so that a wrong one
/// is reported there.
pub(super) fn crate_path(value: &Expr, errors: &mut Errors) -> Option<Path> {
    let path = string(value, "crate", errors)?;
    let wanted = "`crate` takes the path of schema-core as the calling crate names it, \
                  such as `crate = \"schema\"` or `crate = \"::my_reexports::schema_core\"`";
    match path.parse::<Path>() {
        Ok(parsed) if parsed.segments.iter().all(|segment| segment.arguments.is_none()) => Some(parsed),
        Ok(_) => {
            errors.spanned(&path, format!("{wanted}, without generic arguments"));
            None
        }
        Err(_) => {
            errors.spanned(&path, format!("{:?} is not a path; {wanted}", path.value()));
            None
        }
    }
}

/// `after = "a"` or `after = ["a", "b"]`: the ids of the migrations that
/// run first. Whether they repeat, or name the migration itself, needs its
/// id: see `check_dependencies`.
pub(super) fn dependencies(value: &Expr, errors: &mut Errors) -> Vec<LitStr> {
    match value {
        Expr::Array(array) => array
            .elems
            .iter()
            .filter_map(|element| string(element, "after", errors))
            .collect(),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => vec![lit.clone()],
        _ => {
            errors.spanned(
                value,
                "`after` takes a migration id or a list of them: `after = \"0001_a\"` or `after = [\"0001_a\", \"0002_b\"]`",
            );
            Vec::new()
        }
    }
}

/// Records a dependency on the migration `id` itself, and one listed twice.
pub(super) fn check_dependencies(id: &LitStr, after: &[LitStr], errors: &mut Errors) {
    let own = id.value();
    for (index, dependency) in after.iter().enumerate() {
        let name = dependency.value();
        if name == own {
            errors.spanned(
                dependency,
                format!("migration `{own}` cannot run after itself; remove it from `after`"),
            );
        } else if after[..index].iter().any(|earlier| earlier.value() == name) {
            errors.spanned(
                dependency,
                format!("`{name}` is listed twice in `after`; list each dependency once"),
            );
        }
    }
}

/// The characters a group may use: those of an id but `.`.
fn is_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// The characters an id may use: they are safe in a document `_id`, a log
/// line, a shell argument and a generated identifier.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}
