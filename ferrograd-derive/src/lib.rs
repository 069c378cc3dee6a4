//! `#[derive(Module)]` for [ferrograd](https://docs.rs/ferrograd): writes a struct's
//! `ferrograd::nn::Visit` (its parameters, buffers, child modules and modes, by field name) and
//! its `Display` (the model as a tree with parameter counts). The struct still implements
//! `ferrograd::nn::Module` itself, for `forward`. Use it through `ferrograd::nn::Module`.
//!
//! Field attributes:
//! - `#[module(skip)]`: not part of the model (a size, a name, a constant tensor);
//! - `#[module(buffer)]`: its parameters are buffers (saved, not trained), as batch norm's
//!   running statistics;
//! - `#[module(rename = "name")]`: the name in dotted paths, instead of the field's.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, LitStr};

/// How a field takes part in the model.
enum Role {
    Skip,
    Part { name: String, buffer: bool },
}

/// Reads a field's `#[module(..)]` attributes.
fn role(field: &syn::Field, default_name: String) -> syn::Result<Role> {
    let (mut skip, mut buffer, mut name) = (false, false, default_name);
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
            } else if meta.path.is_ident("buffer") {
                buffer = true;
            } else if meta.path.is_ident("rename") {
                name = meta.value()?.parse::<LitStr>()?.value();
            } else {
                return Err(meta.error("expected `skip`, `buffer` or `rename = \"name\"`"));
            }
            Ok(())
        })?;
    }
    if skip && buffer {
        return Err(syn::Error::new(
            field.span(),
            "a field cannot be both `skip` and `buffer`",
        ));
    }
    Ok(if skip {
        Role::Skip
    } else {
        Role::Part { name, buffer }
    })
}

/// `#[derive(Module)]`: see the crate documentation.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(input: DeriveInput) -> syn::Result<Tokens> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(Module)] takes a struct; implement `ferrograd::nn::Visit` by hand for an enum",
        ));
    };
    // A named field is reached by its name, a tuple struct's by its position.
    let fields: Vec<(Tokens, &syn::Field, String)> = data
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.ident {
            Some(id) => (quote!(#id), f, id.to_string()),
            None => {
                let index = syn::Index::from(i);
                (quote!(#index), f, i.to_string())
            }
        })
        .collect();

    let mut visits = Vec::new();
    let mut bounds = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (access, field, default_name) in fields {
        let Role::Part { name, buffer } = role(field, default_name)? else {
            continue;
        };
        // Names become checkpoint keys: empty ones, dots and repeats would not load back.
        if name.is_empty() || name.contains('.') || names.contains(&name) {
            return Err(syn::Error::new(
                field.span(),
                format!("the part name {name:?} is empty, holds a '.' or is used twice"),
            ));
        }
        names.push(name.clone());
        let ty = &field.ty;
        // The check that the type is a part is spanned on the field, so a type that is not is
        // reported there; the calls keep the derive's own hygiene.
        visits.push(quote_spanned!(ty.span()=> ::ferrograd::nn::assert_part::<#ty>();));
        visits.push(if buffer {
            quote!(v.buffer(#name, &self.#access);)
        } else {
            quote!(v.field(#name, &self.#access);)
        });
        bounds.push(quote_spanned!(ty.span()=> #ty: ::ferrograd::nn::Visit));
    }

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // Field types of a generic struct must be parts too; a concrete one is checked by the call.
    let generic = !input.generics.params.is_empty();
    let mut predicates: Vec<Tokens> = where_clause
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    if generic {
        predicates.extend(bounds);
        predicates.push(quote!(Self: ::ferrograd::nn::Module));
    }
    let where_all = if predicates.is_empty() {
        quote!()
    } else {
        quote!(where #(#predicates),*)
    };
    Ok(quote! {
        impl #impl_generics ::ferrograd::nn::Visit for #ident #ty_generics #where_all {
            fn visit(&self, v: &mut ::ferrograd::nn::Visitor<'_>) {
                v.module(self);
                #(#visits)*
            }
        }

        impl #impl_generics ::core::fmt::Display for #ident #ty_generics #where_all {
            /// The model as a tree: each module's name, description and parameter count.
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::ferrograd::nn::write_tree(self, f)
            }
        }
    })
}
