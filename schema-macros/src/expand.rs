//! Writes the registration for one migration function.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Item, ItemFn};

use crate::args::Args;
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

fn register(
    function: &ItemFn,
    id: &syn::LitStr,
    after: &[syn::LitStr],
    description: Option<syn::LitStr>,
) -> TokenStream {
    let name = &function.sig.ident;
    let description = description
        .map(|lit| lit.value())
        .unwrap_or_else(|| item::doc_summary(&function.attrs).unwrap_or_else(|| name.to_string()));
    let private = quote!(::schema_core::__private);
    let line = quote_spanned!(name.span()=> ::core::line!());
    quote! {
        #function

        const _: () = {
            fn __schema_core_run<'db>(db: &'db #private::Database) -> #private::MigrationFuture<'db> {
                #private::boxed(#name(db))
            }

            #private::inventory::submit! {
                #private::Migration::__new(
                    #id,
                    #description,
                    &[#(#after),*],
                    __schema_core_run,
                    #private::Location::__new(::core::file!(), #line, ::core::module_path!()),
                )
            }
        };
    }
}
