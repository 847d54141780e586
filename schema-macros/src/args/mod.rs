//! Parses the arguments of the crate's attributes: `key = value` pairs,
//! read the same way for `#[migration(...)]` and `#[schema_core::test(...)]`.
//!
//! An attribute describes the keys it takes as a [`Keys`]; [`Keys::parse`]
//! rejects the mistakes that are the same for every attribute (arguments
//! that do not parse, an unknown key, one without a value, one given twice,
//! a required one left out) and hands every other value to the attribute,
//! which reads it with the typed readers of `values` (and `accept`, for
//! the preflight codes a migration accepts). Each attribute's own file
//! builds its arguments from the two: `migration` for [`MigrationArgs`],
//! `schema_test` for [`TestArgs`]. A misspelled key or code is answered
//! with the nearest right one (`spelling`).

mod accept;
mod migration;
mod schema_test;
mod spelling;
#[cfg(test)]
mod tests;
mod values;

pub(crate) use migration::MigrationArgs;
pub(crate) use schema_test::TestArgs;
pub(crate) use values::MAX_ID_LEN;

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Meta, Token};

use crate::errors::Errors;

/// `crate = "schema"`: where the generated code finds schema-core, taken
/// by every attribute.
pub(crate) const CRATE: Key = Key {
    name: "crate",
    example: "crate = \"schema\"",
    missing: None,
    once: "keep one",
    flag: false,
};

/// The keys one attribute takes, in the order its messages list them.
pub(crate) struct Keys(pub(crate) &'static [Key]);

/// One key an attribute takes.
pub(crate) struct Key {
    /// The key as written: `group`.
    pub(crate) name: &'static str,
    /// The key written out with a value, to show how: `group = "billing"`.
    pub(crate) example: &'static str,
    /// The message when the key is left out, for a key the attribute needs;
    /// `None` for an optional key.
    pub(crate) missing: Option<&'static str>,
    /// What to do about the key given twice, after "`group` is given twice; ".
    pub(crate) once: &'static str,
    /// A flag is written alone (`background`), never with a value.
    pub(crate) flag: bool,
}

impl Keys {
    /// Parses `tokens` as `key = value` pairs and flags, and calls `read`
    /// with each accepted key's name, the key as written (for a message
    /// about it) and its value (`None` for a flag), in the order they are
    /// written.
    ///
    /// Every mistake is recorded in `errors`, in the order it is written,
    /// interleaved with those `read` records; the pairs that are right are
    /// still read. A flag written with a value is reported and still read as
    /// the flag, so that the rules between arguments see what was meant. A
    /// key the attribute needs that is not given at all is reported last.
    pub(crate) fn parse(
        &self,
        tokens: TokenStream,
        errors: &mut Errors,
        mut read: impl FnMut(&'static str, &syn::Path, Option<&Expr>, &mut Errors),
    ) {
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
            Ok(metas) => metas,
            Err(error) => {
                errors.push(syn::Error::new(
                    error.span(),
                    format!("{error}; {}", self.usage()),
                ));
                return;
            }
        };
        let mut given: Vec<&'static str> = Vec::new();
        for meta in &metas {
            let path = meta.path();
            let known = path
                .get_ident()
                .and_then(|ident| self.0.iter().find(|key| ident == key.name));
            let Some(key) = known else {
                errors.spanned(path, self.unknown(path));
                continue;
            };
            let repeated = given.contains(&key.name);
            given.push(key.name);
            let value = match (meta, key.flag) {
                (Meta::Path(_), true) => None,
                (Meta::NameValue(pair), false) => Some(&pair.value),
                (_, true) => {
                    errors.spanned(
                        meta,
                        format!("`{0}` is a flag and takes no value: write `{0}` alone", key.name),
                    );
                    if !repeated {
                        read(key.name, path, None, errors);
                    }
                    continue;
                }
                (_, false) => {
                    errors.spanned(
                        meta,
                        format!("`{0}` needs a value: write `{0} = \"...\"`", key.name),
                    );
                    continue;
                }
            };
            if repeated {
                errors.spanned(meta, format!("`{}` is given twice; {}", key.name, key.once));
                continue;
            }
            read(key.name, path, value, errors);
        }
        for key in self.0.iter().filter(|key| !given.contains(&key.name)) {
            if let Some(message) = key.missing {
                errors.push(syn::Error::new(Span::call_site(), message));
            }
        }
    }

    /// What is said of the argument `path`, which is none of the keys: the
    /// nearest key when one is near, and every key.
    fn unknown(&self, path: &syn::Path) -> String {
        let Some(ident) = path.get_ident() else {
            return format!("unknown argument; expected one of {}", self.names());
        };
        let written = ident.to_string();
        let near = spelling::nearest(&written, self.0.iter().map(|key| key.name))
            .map(|near| format!(" did you mean `{near}`?"))
            .unwrap_or_default();
        format!(
            "unknown argument `{written}`;{near} expected one of {}",
            self.names()
        )
    }

    /// The keys, as in "expected one of `id`, `after` and `crate`".
    fn names(&self) -> String {
        list(self.0.iter().map(|key| key.name))
    }

    /// How to write the arguments, shown when they do not parse.
    fn usage(&self) -> String {
        let (required, optional): (Vec<&Key>, Vec<&Key>) =
            self.0.iter().partition(|key| key.missing.is_some());
        let optional = list(optional.iter().map(|key| key.example));
        if required.is_empty() {
            format!("write the arguments as any of {optional}")
        } else {
            let required = list(required.iter().map(|key| key.example));
            format!("write the arguments as {required}, optionally followed by any of {optional}")
        }
    }
}

/// "`a`, `b` and `c`": each item in backticks, the last two joined by "and".
fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| format!("`{item}`")).collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}
