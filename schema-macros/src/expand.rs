//! Writes the registration for one migration function.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemFn, LitStr, ReturnType};

use crate::args::{MAX_ID_LEN, MigrationArgs};
use crate::errors::Errors;
use crate::{crate_path, item};

/// Expands `#[migration(args)] item`.
///
/// The function itself is always emitted unchanged, also next to errors,
/// so the rest of the crate keeps type-checking while the user fixes them.
pub(crate) fn migration(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = MigrationArgs::parse(args, &mut errors);
    let transaction = args.transaction.is_some();
    let function = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Fn(function)) => function,
        Ok(other) => {
            errors.spanned(
                item_head(&other),
                format!("`#[migration]` applies to a free `{}`", item::shape(transaction)),
            );
            return with_errors(input, errors);
        }
        Err(error) => {
            errors.push(error);
            return with_errors(input, errors);
        }
    };
    item::check_signature(&function, transaction, args.krate.as_ref(), &mut errors);
    match (errors.finish(), &args.id) {
        (Ok(()), Some(id)) => register(&function, id, &args),
        (Err(error), _) => {
            let compile_error = error.to_compile_error();
            quote!(#function #compile_error)
        }
        // `MigrationArgs::parse` reports a missing id, so this arm is
        // unreachable in practice; emitting the function alone is still
        // correct.
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

fn register(function: &ItemFn, id: &LitStr, args: &MigrationArgs) -> TokenStream {
    let name = &function.sig.ident;
    let description = args
        .description
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| item::doc_summary(&function.attrs).unwrap_or_else(|| name.to_string()));
    let after = &args.after;
    let schema_core = crate_path::schema_core(args.krate.as_ref());
    // One import, so that a wrong `crate` path is one error, not one per use.
    let private = quote!(__schema_core_private);
    let line = quote_spanned!(name.span()=> ::core::line!());
    let guards = duplicate_guards(id);
    let checksum = crate::checksum::checksum(function.block.to_token_stream());
    let call = boxed_call(function, &private);
    let group = args.group.as_ref().map(|group| quote!(.__in_group(#group)));
    let background = args.background.is_some().then(|| quote!(.__in_background()));
    let accept = &args.accept;
    let accept = (!accept.is_empty()).then(|| quote!(.__accepting(&[#(#accept),*])));
    // With `transaction`, the function also takes the session its writes
    // are made with; `item::check_signature` has checked it declares one.
    let (run, new) = if args.transaction.is_some() {
        (
            quote! {
                fn __schema_core_run<'a>(
                    db: &'a #private::Database,
                    session: &'a mut #private::ClientSession,
                ) -> #private::MigrationFuture<'a> {
                    #call
                }
            },
            quote!(__new_in_transaction),
        )
    } else {
        (
            quote! {
                fn __schema_core_run<'db>(db: &'db #private::Database) -> #private::MigrationFuture<'db> {
                    #call
                }
            },
            quote!(__new),
        )
    };
    quote! {
        #function

        const _: () = {
            use #schema_core::__private as #private;

            #guards

            #run

            #private::inventory::submit! {
                #private::Migration::#new(
                    #id,
                    #description,
                    &[#(#after),*],
                    #checksum,
                    __schema_core_run,
                    #private::Location::__new(::core::file!(), #line, ::core::module_path!()),
                )
                #group
                #background
                #accept
            }
        };
    }
}

/// `__private::boxed(identity(name(db)))`, or `name(db, session)` for a
/// migration declared with `transaction`, spanned at the function's return
/// type: `boxed` states what the future must resolve to, so a future that
/// resolves to something else, or to an error that does not convert, is
/// reported there. `boxed` and `identity` start at the type's first token
/// and their parentheses end at its last, so that the call and its argument
/// both underline all of the type.
///
/// `name(..)` keeps the function's name, and each argument the span of its
/// parameter's type, so a parameter of another type than `&Database` (or
/// `&mut ClientSession`) is reported at the parameter.
fn boxed_call(function: &ItemFn, private: &TokenStream) -> TokenStream {
    let name = &function.sig.ident;
    let (first, last) = match &function.sig.output {
        ReturnType::Type(_, ty) => first_and_last_span(ty.to_token_stream()),
        // `item::check_signature` rejects a missing return type first.
        ReturnType::Default => (name.span(), name.span()),
    };
    let mut parameters = function.sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(parameter) => Some(parameter.ty.span()),
        FnArg::Receiver(_) => None,
    });
    let db = match parameters.next() {
        Some(span) => quote_spanned!(span=> db),
        None => quote!(db),
    };
    // `item::check_signature` lets a second parameter through only with
    // `transaction`.
    let session = parameters.next().map(|span| quote_spanned!(span=> , session));
    let call = quote_spanned!(name.span()=> #name(#db #session));
    let identity = respan(quote!(::core::convert::identity), first);
    let identity_arguments = parenthesized(call, last);
    let boxed = respan(quote!(#private::boxed), first);
    let boxed_arguments = parenthesized(quote!(#identity #identity_arguments), last);
    quote!(#boxed #boxed_arguments)
}

fn parenthesized(tokens: TokenStream, span: Span) -> Group {
    let mut group = Group::new(Delimiter::Parenthesis, tokens);
    group.set_span(span);
    group
}

fn first_and_last_span(tokens: TokenStream) -> (Span, Span) {
    let mut spans = tokens.into_iter().map(|token| token.span());
    let first = spans.next().unwrap_or_else(Span::call_site);
    (first, spans.last().unwrap_or(first))
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// Two items named after the id, so a second migration with the same id is
/// a build error whose first line names the id:
///
/// - a `#[macro_export]` macro, which lands at the crate root wherever it
///   is declared: a second one in the same crate is E0428 ("the name
///   `duplicate_migration_id_0001_events` is defined multiple times"),
///   reported by `cargo check` and editors. The whole definition is spanned
///   at the id literal, so both places the compiler shows are the two ids;
/// - an exported static in the same block as the registration, so both end
///   up in the same object file: two crates linked into one binary then
///   define the same symbol, `duplicate_migration_id.0001_events`, and the
///   linker refuses, naming it.
///
/// The `unsafe(export_name)` attribute gets a mixed-site span: the
/// `unsafe_code` lint then treats it as the macro's, not the user's, and a
/// crate with `#![forbid(unsafe_code)]` still compiles.
fn duplicate_guards(id: &LitStr) -> TokenStream {
    let macro_name = Ident::new(&guard_name(&id.value()), id.span());
    let symbol = guard_symbol(&id.value());
    let macro_site = Span::mixed_site().located_at(id.span());
    let export = quote_spanned!(macro_site=> #[unsafe(export_name = #symbol)]);
    let guard_macro = quote_spanned! {id.span()=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #macro_name {
            () => {};
        }
    };
    quote! {
        #guard_macro

        #export
        #[used]
        #[doc(hidden)]
        static DUPLICATE_MIGRATION_ID_GUARD: ::core::primitive::u8 = 0;
    }
}

/// The linker symbol of `id`'s guard: `duplicate_migration_id.` followed by
/// the id as written, since a symbol may hold `.` and `-`. It starts with a
/// letter: a symbol starting with a digit breaks the version script GNU ld
/// is given for a `cdylib`.
pub(crate) fn guard_symbol(id: &str) -> String {
    format!("duplicate_migration_id.{id}")
}

const GUARD_PREFIX: &str = "duplicate_migration_id_";

/// The name of the guard macro of `id`: `duplicate_migration_id_`
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
    use super::{GUARD_PREFIX, MAX_ID_LEN, guard_name, guard_symbol};

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
        assert_eq!(guard_name("0001_events"), "duplicate_migration_id_0001_events");
    }

    #[test]
    fn the_linker_symbol_holds_the_id_as_written_after_a_letter() {
        assert_eq!(guard_symbol("0001_events"), "duplicate_migration_id.0001_events");
        assert_eq!(
            guard_symbol("0002_events.ttl-v2"),
            "duplicate_migration_id.0002_events.ttl-v2"
        );
    }

    #[test]
    fn other_ids_are_escaped_past_the_longest_verbatim_name() {
        let name = guard_name("0002_events.ttl-v2");
        assert!(name.starts_with("duplicate_migration_id_0002__events_dttl_hv2_e_"));
        assert!(name.len() - GUARD_PREFIX.len() > MAX_ID_LEN);
    }
}
