//! Parses the arguments of `#[migration(...)]` into [`Args`].

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Path, Token};

use crate::errors::Errors;

/// The longest id accepted, in bytes.
pub(crate) const MAX_ID_LEN: usize = 128;

const KEYS: &str = "`id`, `after`, `description`, `group` and `crate`";

/// The arguments of one `#[migration(...)]`, each checked on its own.
pub(crate) struct Args {
    pub(crate) id: Option<LitStr>,
    pub(crate) after: Vec<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) group: Option<LitStr>,
    /// `crate = "path"`: where the generated code finds schema-core.
    pub(crate) krate: Option<Path>,
}

impl Args {
    /// Parses `tokens`, recording every mistake in `errors`; what could be
    /// read is returned even when some of it was wrong.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args {
            id: None,
            after: Vec::new(),
            description: None,
            group: None,
            krate: None,
        };
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(metas) => metas,
            Err(error) => {
                errors.push(syn::Error::new(
                    error.span(),
                    format!(
                        "{error}; write the arguments as `id = \"0001_name\"`, \
                         optionally followed by any of `after = \"0000_other\"`, `description = \"...\"`, \
                         `group = \"billing\"` and `crate = \"schema\"`"
                    ),
                ));
                return args;
            }
        };
        let mut seen_after = false;
        for meta in &metas {
            let Some(key) = meta.path().get_ident().map(ToString::to_string) else {
                errors.spanned(meta.path(), format!("unknown argument; expected one of {KEYS}"));
                continue;
            };
            let value = match meta {
                Meta::NameValue(pair) => &pair.value,
                _ if !matches!(key.as_str(), "id" | "after" | "description" | "group" | "crate") => {
                    errors.spanned(meta, format!("unknown argument `{key}`; expected one of {KEYS}"));
                    continue;
                }
                _ => {
                    errors.spanned(meta, format!("`{key}` needs a value: write `{key} = \"...\"`"));
                    continue;
                }
            };
            match key.as_str() {
                "id" => {
                    if args.id.is_some() {
                        errors.spanned(meta, "`id` is given twice; a migration has exactly one id");
                    } else if let Some(id) = string(value, "id", errors) {
                        check_id(&id, errors);
                        args.id = Some(id);
                    }
                }
                "description" => {
                    if args.description.is_some() {
                        errors.spanned(meta, "`description` is given twice; keep one");
                    } else {
                        args.description = string(value, "description", errors);
                    }
                }
                "group" => {
                    if args.group.is_some() {
                        errors.spanned(meta, "`group` is given twice; a migration belongs to one group");
                    } else if let Some(group) = string(value, "group", errors) {
                        check_group(&group, errors);
                        args.group = Some(group);
                    }
                }
                "crate" => {
                    if args.krate.is_some() {
                        errors.spanned(meta, "`crate` is given twice; keep one");
                    } else if let Some(path) = string(value, "crate", errors) {
                        args.krate = crate_path(&path, errors);
                    }
                }
                "after" => {
                    if seen_after {
                        errors.spanned(
                            meta,
                            "`after` is given twice; list every dependency once: `after = [\"a\", \"b\"]`",
                        );
                        continue;
                    }
                    seen_after = true;
                    args.after = dependencies(value, errors);
                }
                _ => errors.spanned(
                    meta.path(),
                    format!("unknown argument `{key}`; expected one of {KEYS}"),
                ),
            }
        }
        if args.id.is_none() && !metas.iter().any(|meta| meta.path().is_ident("id")) {
            errors.push(syn::Error::new(
                Span::call_site(),
                "missing `id`: write `#[migration(id = \"0001_name\")]` with an id that never changes once deployed",
            ));
        }
        if let Some(id) = &args.id {
            check_dependencies(id, &args.after, errors);
        }
        args
    }
}

/// The string literal in `value`, or a recorded mistake.
fn string(value: &Expr, key: &str, errors: &mut Errors) -> Option<LitStr> {
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

/// `after = "a"` or `after = ["a", "b"]`.
fn dependencies(value: &Expr, errors: &mut Errors) -> Vec<LitStr> {
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

fn check_id(id: &LitStr, errors: &mut Errors) {
    let text = id.value();
    if text.is_empty() {
        errors.spanned(
            id,
            "the migration id is empty; write a short stable name such as \"0001_events\"",
        );
    } else if text.len() > MAX_ID_LEN {
        errors.spanned(
            id,
            format!(
                "the migration id is {} bytes long; ids are at most {MAX_ID_LEN} bytes",
                text.len()
            ),
        );
    }
    if let Some(bad) = text.chars().find(|c| !is_id_char(*c)) {
        errors.spanned(
            id,
            format!(
                "the migration id contains {bad:?}; ids use only ASCII letters, digits, `_`, `.` and `-`"
            ),
        );
    }
}

fn check_group(group: &LitStr, errors: &mut Errors) {
    let text = group.value();
    if text.is_empty() {
        errors.spanned(
            group,
            "the group is empty; write a name such as \"billing\", or leave `group` out for the default group",
        );
    } else if let Some(bad) = text.chars().find(|c| !is_group_char(*c)) {
        errors.spanned(
            group,
            format!("the group contains {bad:?}; groups use only ASCII letters, digits, `_` and `-`"),
        );
    }
}

/// `crate = "schema"` or `crate = "::my::reexport::schema_core"`: a path,
/// spanned at the literal so that a wrong one is reported there.
fn crate_path(path: &LitStr, errors: &mut Errors) -> Option<Path> {
    let wanted = "`crate` takes the path of schema-core as the calling crate names it, \
                  such as `crate = \"schema\"` or `crate = \"::my_reexports::schema_core\"`";
    match path.parse::<Path>() {
        Ok(parsed) if parsed.segments.iter().all(|segment| segment.arguments.is_none()) => Some(parsed),
        Ok(_) => {
            errors.spanned(path, format!("{wanted}, without generic arguments"));
            None
        }
        Err(_) => {
            errors.spanned(path, format!("{:?} is not a path; {wanted}", path.value()));
            None
        }
    }
}

fn check_dependencies(id: &LitStr, after: &[LitStr], errors: &mut Errors) {
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
