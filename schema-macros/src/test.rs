//! Expands `#[schema_core::test]`: a `#[test]` that runs an async body on a
//! fresh database with the migrations applied.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemFn;

use crate::args::TestArgs;
use crate::errors::Errors;

/// Expands `#[schema_core::test(args)] async fn name(db: Database) { ... }`.
///
/// The function is kept next to any error, so the rest of the crate still
/// type-checks.
pub(crate) fn test(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = TestArgs::parse(args, &mut errors);
    let function = match syn::parse2::<ItemFn>(input.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#input #error);
        }
    };
    if function.sig.asyncness.is_none() {
        errors.spanned(
            function.sig.fn_token,
            "`#[schema_core::test]` applies to an `async fn name(db: Database)`; add `async`",
        );
    }
    if function.sig.inputs.len() != 1 {
        errors.spanned(
            &function.sig.inputs,
            "a `#[schema_core::test]` function takes one parameter, the test's database: \
             `db: schema_core::mongodb::Database`",
        );
    }
    if let Err(error) = errors.finish() {
        let error = error.to_compile_error();
        return quote!(#function #error);
    }

    let schema_core = crate::crate_path::schema_core(args.krate.as_ref());
    let name = &function.sig.ident;
    let body_name = format_ident!("__schema_core_test_{}", name);
    let mut body = function.clone();
    body.sig.ident = body_name.clone();
    body.attrs.clear();
    body.vis = syn::Visibility::Inherited;
    let attrs = &function.attrs;
    let group = match &args.group {
        Some(group) => quote!(::core::option::Option::Some(#group)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        fn #name() {
            #body
            #schema_core::__private::run_test(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                #group,
                #body_name,
            )
        }
    }
}
