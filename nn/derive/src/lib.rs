//! # ferroflow-nn-derive
//!
//! `#[derive(Module)]` for ferroflow-nn: writes a struct's `tf.Module`-style variable
//! tracking from its field names. Use it through `ferroflow_nn::Module` (or
//! `ferroflow::nn::Module`), which re-exports the derive next to the trait of the same name.
//!
//! ## What it generates
//!
//! For a struct with named fields the derive implements three traits:
//!
//! - `Module`: `name()`, `attributes()` (one `(field name, Attr)` entry per tracked field
//!   that holds something, in declaration order; the trait's provided methods sort them) and
//!   `as_dyn()`;
//! - `Track`, so the struct can itself be a field of another module (`Attr::Module`);
//! - `Trackable` (from ferroflow-tensor-core), so checkpoints can save it: its
//!   `variables_by_path` is `Module::variables_by_path_in_order`.
//!
//! ```text
//! use ferroflow_nn::Module;
//! use ferroflow_tensor_core::{Tensor, Variable};
//!
//! #[derive(Module)]
//! struct Dense {
//!     w: Variable,          // tracked: path "w"
//!     #[module(rename = "bias")]
//!     b: Option<Variable>,  // tracked as "bias" (nothing when None)
//!     units: usize,         // plain data: ignored
//!     #[module(skip)]
//!     cache: Variable,      // not tracked
//! }                         // name() == "dense"
//!
//! #[derive(Module)]
//! struct Mlp {
//!     name: String,         // name() returns it
//!     layers: Vec<Dense>,   // paths "layers/0/w", "layers/1/bias", ...
//! }
//! ```
//!
//! ## Fields
//!
//! Every field is tracked (and must implement `Track`: variables, modules, `Vec`, arrays,
//! `Option`, `Box` and `BTreeMap<String, _>` of those) except:
//!
//! - the name field (below);
//! - fields marked `#[module(skip)]`;
//! - fields whose type is plain data, recognised by the last segment of its path: the
//!   primitive numbers, `bool`, `char`, `String`, `str`, `Tensor`, `DType`, `Shape`,
//!   `PhantomData<_>`, function pointers, and references, `Option`, `Vec`, `Box`, arrays,
//!   slices and tuples of plain data (`&str`, `Vec<usize>`, `(usize, usize)`, `[f32; 4]`).
//!
//! A tracked field that does not implement `Track` is a compile error pointing at the field.
//! Tracked fields whose type mentions one of the struct's type parameters get a
//! `FieldType: Track` bound on the generated impls, so `struct Wrap<M> { inner: M }` works
//! without writing the bound.
//!
//! Field attributes:
//!
//! - `#[module(skip)]`: leave the field out;
//! - `#[module(rename = "kernel")]`: use `kernel` as the attribute name (in paths, and in the
//!   sorted-name order that variables and submodules follow). A renamed field is always
//!   tracked, even if its type looks like plain data;
//! - `#[module(name)]`: this field (a `String`) is the module's name.
//!
//! ## Name
//!
//! `name()` returns the field marked `#[module(name)]`; else a field called `name` of type
//! `String`; else the struct's name in snake case, computed when the macro expands
//! (`MyCoolModule` → `my_cool_module`), TensorFlow's default.
//!
//! ## Crate path
//!
//! The generated code names the nn crate as found in the user's `Cargo.toml`: `::ferroflow_nn`
//! (or the name it was renamed to) when the crate depends on `ferroflow-nn`, `crate` inside
//! ferroflow-nn itself, `::ferroflow::nn` when it depends only on the `ferroflow` facade, and
//! `::ferroflow_nn` otherwise. A struct-level `#[module(crate = "path::to::nn")]` overrides
//! this (needed, for instance, in ferroflow-nn's own doctests, which are separate crates that
//! see the nn crate as `::ferroflow_nn`).
//!
//! Enums, unions and tuple or unit structs are rejected with a compile error.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use proc_macro::TokenStream;
use proc_macro2::{TokenStream as TokenStream2, TokenTree};
use proc_macro_crate::{crate_name, FoundCrate};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Data, DeriveInput, Error, Field, Fields, GenericArgument, Ident, LitStr, PathArguments, Type,
    WherePredicate,
};

/// Derives `Module`, `Track` and `Trackable` for a struct with named fields.
///
/// See the [crate documentation](crate) for the fields that are tracked, the name, and the
/// `#[module(skip)]`, `#[module(rename = "...")]`, `#[module(name)]` and
/// `#[module(crate = "...")]` attributes.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(Error::into_compile_error).into()
}

/// The `#[module(...)]` options of one field.
#[derive(Default)]
struct FieldOpts {
    skip: bool,
    name: bool,
    rename: Option<LitStr>,
}

/// How the derive treats one field.
enum Role<'a> {
    /// The module's name.
    Name,
    /// Ignored: `#[module(skip)]` or plain data.
    Ignored,
    /// Tracked under the given attribute name.
    Tracked { attr: String, field: &'a Field },
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let krate = match struct_crate_override(input)? {
        Some(path) => quote!(#path),
        None => nn_crate_path(),
    };
    let fields = named_fields(input)?;

    let mut errors: Option<Error> = None;
    let mut push_err = |e: Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    // Options of every field; the name field is the `#[module(name)]` one, else `name: String`.
    let opts: Vec<FieldOpts> = fields
        .iter()
        .map(|f| {
            field_opts(f).unwrap_or_else(|e| {
                push_err(e);
                FieldOpts::default()
            })
        })
        .collect();
    let marked: Vec<usize> = (0..fields.len()).filter(|&i| opts[i].name).collect();
    for &i in marked.iter().skip(1) {
        push_err(Error::new_spanned(
            fields[i],
            "only one field can be marked `#[module(name)]`",
        ));
    }
    let name_index = marked.first().copied().or_else(|| {
        (0..fields.len()).find(|&i| {
            let f = fields[i];
            f.ident.as_ref().is_some_and(|id| id == "name") && is_string(&f.ty) && !opts[i].skip
        })
    });
    if let Some(i) = name_index {
        if let Some(lit) = &opts[i].rename {
            push_err(Error::new(
                lit.span(),
                "the name field is not tracked, so `rename` does not apply to it",
            ));
        }
    }

    let mut roles = Vec::with_capacity(fields.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, (field, opt)) in fields.iter().zip(&opts).enumerate() {
        let ident = field.ident.as_ref().expect("named field");
        let role = if Some(i) == name_index {
            Role::Name
        } else if opt.skip || (opt.rename.is_none() && is_plain(&field.ty)) {
            Role::Ignored
        } else {
            let attr = match &opt.rename {
                Some(lit) => lit.value(),
                None => ident.unraw().to_string(),
            };
            let span = opt.rename.as_ref().map_or(ident.span(), LitStr::span);
            if seen.contains(&attr) {
                push_err(Error::new(
                    span,
                    format!("two tracked fields have the attribute name `{attr}`; use `#[module(rename = \"...\")]`"),
                ));
            }
            seen.push(attr.clone());
            Role::Tracked { attr, field }
        };
        roles.push(role);
    }
    if let Some(e) = errors {
        return Err(e);
    }

    let name_body = match name_index {
        Some(i) => {
            let f = fields[i];
            let ident = f.ident.as_ref().expect("named field");
            quote_spanned!(f.ty.span()=> &self.#ident)
        }
        None => {
            let name = snake_case(&input.ident.unraw().to_string());
            quote!(#name)
        }
    };

    let tracked: Vec<(&String, &Field)> = roles
        .iter()
        .filter_map(|r| match r {
            Role::Tracked { attr, field } => Some((attr, *field)),
            Role::Name | Role::Ignored => None,
        })
        .collect();
    let pushes = tracked.iter().map(|(attr, field)| {
        let ident = field.ident.as_ref().expect("named field");
        let track = quote_spanned!(field.ty.span()=> #krate::Track::track(&self.#ident));
        quote! {
            if let ::core::option::Option::Some(__attr) = #track {
                __out.push((::std::string::String::from(#attr), __attr));
            }
        }
    });
    let attributes_body = if tracked.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        let n = tracked.len();
        quote! {
            let mut __out = ::std::vec::Vec::with_capacity(#n);
            #(#pushes)*
            __out
        }
    };

    // `FieldType: Track` for tracked fields whose type mentions a type parameter.
    let type_params: Vec<&Ident> = input.generics.type_params().map(|p| &p.ident).collect();
    let mut generics = input.generics.clone();
    if !type_params.is_empty() {
        let where_clause = generics.make_where_clause();
        for (_, field) in &tracked {
            let ty = &field.ty;
            if mentions_any(quote!(#ty).into_iter().collect(), &type_params) {
                let pred: WherePredicate = syn::parse_quote_spanned!(ty.span()=> #ty: #krate::Track);
                where_clause.predicates.push(pred);
            }
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let ident = &input.ident;

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Module for #ident #ty_generics #where_clause {
            fn name(&self) -> &str {
                #name_body
            }

            fn attributes(&self) -> ::std::vec::Vec<(::std::string::String, #krate::Attr<'_>)> {
                #attributes_body
            }

            fn as_dyn(&self) -> &dyn #krate::Module {
                self
            }
        }

        #[automatically_derived]
        impl #impl_generics #krate::Track for #ident #ty_generics #where_clause {
            fn track(&self) -> ::core::option::Option<#krate::Attr<'_>> {
                ::core::option::Option::Some(#krate::Attr::Module(self))
            }
        }

        #[automatically_derived]
        impl #impl_generics #krate::__private::Trackable for #ident #ty_generics #where_clause {
            fn variables_by_path(&self) -> ::std::vec::Vec<(::std::string::String, #krate::Variable)> {
                #krate::Module::variables_by_path_in_order(self)
            }
        }
    })
}

/// The struct's named fields, or an error for every other shape.
fn named_fields(input: &DeriveInput) -> syn::Result<Vec<&Field>> {
    let what = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => return Ok(named.named.iter().collect()),
            Fields::Unnamed(_) => "a tuple struct",
            Fields::Unit => "a unit struct",
        },
        Data::Enum(_) => "an enum",
        Data::Union(_) => "a union",
    };
    Err(Error::new(
        input.ident.span(),
        format!(
            "#[derive(Module)] supports only structs with named fields, and `{}` is {what}: \
             module attributes are named by their fields",
            input.ident
        ),
    ))
}

/// Parses the `#[module(...)]` attributes of a field.
fn field_opts(field: &Field) -> syn::Result<FieldOpts> {
    let mut opts = FieldOpts::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                opts.skip = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                opts.name = true;
                Ok(())
            } else if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                if value.is_empty() || value.contains('/') {
                    return Err(Error::new(
                        lit.span(),
                        "a renamed attribute must be non-empty and contain no `/`",
                    ));
                }
                if opts.rename.is_some() {
                    return Err(meta.error("`rename` given twice"));
                }
                opts.rename = Some(lit);
                Ok(())
            } else {
                Err(meta.error("unknown field option; expected `skip`, `rename = \"...\"` or `name`"))
            }
        })?;
    }
    let conflict = match (opts.skip, opts.name, opts.rename.is_some()) {
        (true, _, true) => Some("`skip` and `rename` cannot be combined"),
        (true, true, _) => Some("`skip` and `name` cannot be combined"),
        _ => None,
    };
    match conflict {
        Some(msg) => Err(Error::new_spanned(field, msg)),
        None => Ok(opts),
    }
}

/// Parses the struct-level `#[module(crate = "...")]`.
fn struct_crate_override(input: &DeriveInput) -> syn::Result<Option<syn::Path>> {
    let mut path = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                path = Some(lit.parse::<syn::Path>()?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown struct option; expected `crate = \"...\"` (`skip`, `rename` and `name` go on fields)",
                ))
            }
        })?;
    }
    Ok(path)
}

/// The path of ferroflow-nn as the crate being compiled sees it.
fn nn_crate_path() -> TokenStream2 {
    match crate_name("ferroflow-nn") {
        Ok(FoundCrate::Itself) => quote!(crate),
        Ok(FoundCrate::Name(name)) => {
            let id = format_ident!("{}", name);
            quote!(::#id)
        }
        Err(_) => match crate_name("ferroflow") {
            Ok(FoundCrate::Itself) => quote!(crate::nn),
            Ok(FoundCrate::Name(name)) => {
                let id = format_ident!("{}", name);
                quote!(::#id::nn)
            }
            Err(_) => quote!(::ferroflow_nn),
        },
    }
}

/// The last path segment of `ty`, if `ty` is a plain path.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

/// Whether `ty` is `String` (by its last path segment).
fn is_string(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "String" && s.arguments.is_none())
}

/// The first type argument of a path segment (`T` in `Vec<T>`).
fn first_type_arg(seg: &syn::PathSegment) -> Option<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// Whether `ty` is obviously plain data that cannot hold variables or modules.
fn is_plain(ty: &Type) -> bool {
    const PLAIN: &[&str] = &[
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32", "f64", "bool",
        "char", "String", "str", "Tensor", "DType", "Shape",
    ];
    match ty {
        Type::Group(g) => is_plain(&g.elem),
        Type::Paren(p) => is_plain(&p.elem),
        Type::Reference(r) => is_plain(&r.elem),
        Type::Array(a) => is_plain(&a.elem),
        Type::Slice(s) => is_plain(&s.elem),
        Type::Tuple(t) => t.elems.iter().all(is_plain),
        Type::FnPtr(_) => true,
        Type::Path(p) if p.qself.is_none() => {
            let Some(seg) = p.path.segments.last() else {
                return false;
            };
            let name = seg.ident.to_string();
            match name.as_str() {
                "PhantomData" => true,
                "Option" | "Vec" | "Box" => first_type_arg(seg).is_some_and(is_plain),
                _ => seg.arguments.is_none() && PLAIN.contains(&name.as_str()),
            }
        }
        _ => false,
    }
}

/// Whether the tokens mention any of `idents`.
fn mentions_any(tokens: Vec<TokenTree>, idents: &[&Ident]) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(id) => idents.iter().any(|p| **p == id),
        TokenTree::Group(g) => mentions_any(g.stream().into_iter().collect(), idents),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// `MyCoolModule` → `my_cool_module`: the same rule as `ferroflow_nn::snake_case`.
fn snake_case(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
