//! Collects every mistake found in one attribute, so a single build reports
//! them together instead of one per build.

use std::fmt::Display;

use quote::ToTokens;

#[derive(Default)]
pub(crate) struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records a mistake pointing at `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(error),
            None => self.first = Some(error),
        }
    }

    /// `Err` with every recorded mistake, or `Ok` when there were none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.first {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
