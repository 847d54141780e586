//! Writes the registration for one migration function.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Item, ItemFn, LitStr};

use crate::args::Args;
use crate::args::MAX_ID_LEN;
use crate::errors::Errors;
use crate::item;

/// Expands `#[migration(args)] item`.
///
/// The function itself is always emitted unchanged, also next to errors,
/// so the rest of the crate keeps type-checking while the user fixes them.
pub(crate) fn migration(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse(args, &mut errors);
    let function = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Fn(function)) => function,
        Ok(other) => {
            errors.spanned(
                item_head(&other),
                "`#[migration]` applies to a free `async fn name(db: &mongodb::Database) -> Result<(), E>`",
            );
            return with_errors(input, errors);
        }
        Err(error) => {
            errors.push(error);
            return with_errors(input, errors);
        }
    };
    item::check_signature(&function, &mut errors);
    match (errors.finish(), args.id) {
        (Ok(()), Some(id)) => register(&function, &id, &args.after, args.description),
        (Err(error), _) => {
            let compile_error = error.to_compile_error();
            quote!(#function #compile_error)
        }
        // `Args::parse` reports a missing id, so this arm is unreachable in
        // practice; emitting the function alone is still correct.
        (Ok(()), None) => quote!(#function),
    }
}

fn with_errors(input: TokenStream, errors: Errors) -> TokenStream {
    let compile_error = errors.finish().err().map(|error| error.to_compile_error());
    quote!(#input #compile_error)
}

/// The tokens an error about a misplaced attribute should point at.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(item) => {
            let (token, name) = (&item.struct_token, &item.ident);
            quote!(#token #name)
        }
        Item::Enum(item) => {
            let (token, name) = (&item.enum_token, &item.ident);
            quote!(#token #name)
        }
        Item::Impl(item) => {
            let (token, ty) = (&item.impl_token, &item.self_ty);
            quote!(#token #ty)
        }
        other => quote!(#other),
    }
}

fn register(function: &ItemFn, id: &LitStr, after: &[LitStr], description: Option<LitStr>) -> TokenStream {
    let name = &function.sig.ident;
    let description = description
        .map(|lit| lit.value())
        .unwrap_or_else(|| item::doc_summary(&function.attrs).unwrap_or_else(|| name.to_string()));
    let private = quote!(::schema_core::__private);
    let line = quote_spanned!(name.span()=> ::core::line!());
    let guards = duplicate_guards(id);
    let checksum = crate::checksum::checksum(function.block.to_token_stream());
    // A parameter of another type than `&Database` is then reported at the
    // parameter, not at the attribute.
    let db = match function.sig.inputs.first() {
        Some(syn::FnArg::Typed(parameter)) => quote_spanned!(parameter.ty.span()=> db),
        _ => quote!(db),
    };
    quote! {
        #function

        const _: () = {
            #guards

            fn __schema_core_run<'db>(db: &'db #private::Database) -> #private::MigrationFuture<'db> {
                #private::boxed(#name(#db))
            }

            #private::inventory::submit! {
                #private::Migration::__new(
                    #id,
                    #description,
                    &[#(#after),*],
                    #checksum,
                    __schema_core_run,
                    #private::Location::__new(::core::file!(), #line, ::core::module_path!()),
                )
            }
        };
    }
}

/// Two items named after the id, so a second migration with the same id is
/// a build error that names it:
///
/// - a `#[macro_export]` macro, which lands at the crate root wherever it
///   is declared: a second one in the same crate is E0428, reported by
///   `cargo check` and editors, pointing at both ids;
/// - an exported static in the same block as the registration, so both end
///   up in the same object file: two crates linked into one binary then
///   define the same symbol, and the linker refuses.
///
/// The names are spanned at the id literal, so errors point at it. The
/// `unsafe(export_name)` attribute gets a mixed-site span: the
/// `unsafe_code` lint then treats it as the macro's, not the user's, and a
/// crate with `#![forbid(unsafe_code)]` still compiles.
fn duplicate_guards(id: &LitStr) -> TokenStream {
    let macro_name = Ident::new(&guard_name(&id.value()), id.span());
    // A symbol may hold any character, so the linker's message shows the id
    // as written.
    let symbol = format!("{GUARD_PREFIX}{}", id.value());
    let macro_site = Span::mixed_site().located_at(id.span());
    let export = quote_spanned!(macro_site=> #[unsafe(export_name = #symbol)]);
    quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #macro_name {
            () => {};
        }

        #export
        #[used]
        #[doc(hidden)]
        static DUPLICATE_MIGRATION_ID_GUARD: ::core::primitive::u8 = 0;
    }
}

const GUARD_PREFIX: &str = "__schema_core_duplicate_migration_id__";

/// The name of the guards of `id`: `__schema_core_duplicate_migration_id__`
/// followed by the id itself when it is a valid identifier tail (letters,
/// digits and `_`), else by an injective escape of it. Distinct ids always
/// get distinct names. Ids are checked to use only `A-Z a-z 0-9 _ . -`
/// before this runs.
pub(crate) fn guard_name(id: &str) -> String {
    let mut name = String::from(GUARD_PREFIX);
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.push_str(id);
        return name;
    }
    // Ids with `.` or `-` are escaped, terminated by `_e` (which no escape
    // produces) and padded past the longest id, so their names differ from
    // each other and from every verbatim one.
    for c in id.chars() {
        match c {
            '_' => name.push_str("__"),
            '.' => name.push_str("_d"),
            '-' => name.push_str("_h"),
            other => name.push(other),
        }
    }
    name.push_str("_e");
    while name.len() - GUARD_PREFIX.len() <= MAX_ID_LEN {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::{GUARD_PREFIX, MAX_ID_LEN, guard_name};

    #[test]
    fn guard_names_are_distinct_for_distinct_ids() {
        let long_plain = format!("a_db_e{}", "_".repeat(MAX_ID_LEN - 6));
        let ids = [
            "a_b",
            "a-b",
            "a.b",
            "a__b",
            "a_hb",
            "a_db",
            "A_b",
            "ab",
            "a_d",
            "a.",
            "a_",
            "a-",
            "a.b_",
            "a.b__",
            "a_db_e",
            &long_plain,
        ];
        let names: std::collections::HashSet<String> = ids.iter().map(|id| guard_name(id)).collect();
        assert_eq!(names.len(), ids.len(), "{names:?}");
    }

    #[test]
    fn an_identifier_like_id_appears_verbatim() {
        assert_eq!(
            guard_name("0001_events"),
            "__schema_core_duplicate_migration_id__0001_events"
        );
    }

    #[test]
    fn other_ids_are_escaped_past_the_longest_verbatim_name() {
        let name = guard_name("0002_events.ttl-v2");
        assert!(name.starts_with("__schema_core_duplicate_migration_id__0002__events_dttl_hv2_e_"));
        assert!(name.len() - GUARD_PREFIX.len() > MAX_ID_LEN);
    }
}
