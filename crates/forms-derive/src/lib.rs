//! `#[derive(FormPage)]` and `#[derive(FormChoices)]`: form pages and choices declared as Rust
//! types, for `cadre-forms` (which re-exports both; use them through it).
//!
//! A struct's named fields become the page's fields, in order. Each field's Rust type says what
//! kind of field it is (through `cadre_forms::FormValue`), `#[form(...)]` attributes add bounds,
//! formats, defaults and lookups, doc comments become descriptions, and serde's `rename` and
//! `rename_all` are honoured so that the validated answer parses back into the struct.

use heck::{
    ToKebabCase, ToLowerCamelCase, ToShoutyKebabCase, ToShoutySnakeCase, ToSnakeCase,
    ToUpperCamelCase,
};
use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Ident, LitStr, Token, parse_macro_input};

/// Derives `cadre_forms::FormModel` (the page, its lookups and parsing) and
/// `cadre_forms::FormValue` (so the struct can be a nested model of another page).
///
/// On the struct: `#[form(title = "…")]` (a page without one is `unknown`, as pydantic-forms
/// writes it; a nested model is titled with the struct's name), `#[form(check = path)]` for a
/// check across fields. On a field: `min_length`, `max_length`, `pattern`, `format`, `gt`, `ge`,
/// `lt`, `le`, `multiple_of`, `min_items`, `max_items`, `unique`, `default = <expr>` (any
/// `serde_json::json!` input), `title`, `extra(key = <json>)` (a schema key such as `layout`),
/// `check = path`, and `lookup = path` (a
/// `cadre_forms::ChoiceLookup` whose choices the field offers, looked up when the page is built).
#[proc_macro_derive(FormPage, attributes(form))]
pub fn derive_form_page(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    page(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `cadre_forms::FormChoices` and `cadre_forms::FormValue` for an enum of unit variants:
/// a choice field offering its variants. `#[form(name = "…")]` names the enum under `$defs`
/// (default: the enum's name); `#[form(label = "…")]` on a variant gives it a label. A variant's
/// value is its serde name.
#[proc_macro_derive(FormChoices, attributes(form))]
pub fn derive_form_choices(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    choices(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The `#[form(...)]` and relevant `#[serde(...)]` settings of a struct, field, enum or variant.
#[derive(Default)]
struct Settings {
    title: Option<LitStr>,
    name: Option<LitStr>,
    label: Option<LitStr>,
    format: Option<Expr>,
    pattern: Option<Expr>,
    min_length: Option<Expr>,
    max_length: Option<Expr>,
    min_items: Option<Expr>,
    max_items: Option<Expr>,
    bounds: Vec<(Ident, Expr)>,
    unique: bool,
    default: Option<Tokens>,
    checks: Vec<Expr>,
    lookup: Option<Expr>,
    extra: Vec<(String, Tokens)>,
    rename: Option<LitStr>,
    rename_all: Option<LitStr>,
    description: Vec<String>,
}

impl Settings {
    fn of(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut settings = Self::default();
        for attr in attrs {
            if attr.path().is_ident("doc") {
                if let syn::Meta::NameValue(doc) = &attr.meta
                    && let Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }) = &doc.value
                {
                    settings.description.push(text.value().trim().to_owned());
                }
            } else if attr.path().is_ident("serde") {
                settings.serde(attr)?;
            } else if attr.path().is_ident("form") {
                attr.parse_nested_meta(|meta| settings.form(&meta))?;
            }
        }
        Ok(settings)
    }

    fn form(&mut self, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(Ident::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "title" => self.title = Some(meta.value()?.parse()?),
            "name" => self.name = Some(meta.value()?.parse()?),
            "label" => self.label = Some(meta.value()?.parse()?),
            "format" => self.format = Some(meta.value()?.parse()?),
            "pattern" => self.pattern = Some(meta.value()?.parse()?),
            "min_length" => self.min_length = Some(meta.value()?.parse()?),
            "max_length" => self.max_length = Some(meta.value()?.parse()?),
            "min_items" => self.min_items = Some(meta.value()?.parse()?),
            "max_items" => self.max_items = Some(meta.value()?.parse()?),
            "gt" | "ge" | "lt" | "le" | "multiple_of" => {
                let ident = Ident::new(&key, meta.path.span());
                self.bounds.push((ident, meta.value()?.parse()?));
            }
            "unique" => self.unique = true,
            "default" => {
                let value = meta.value()?;
                self.default = Some(value.call(parse_json_input)?);
            }
            "check" => self.checks.push(meta.value()?.parse()?),
            "lookup" => self.lookup = Some(meta.value()?.parse()?),
            "extra" => meta.parse_nested_meta(|extra| {
                let key = extra.path.get_ident().map(Ident::to_string);
                let key = key.ok_or_else(|| extra.error("an extra schema key is a name"))?;
                let value = extra.value()?.call(parse_json_input)?;
                self.extra.push((key, value));
                Ok(())
            })?,
            _ => return Err(meta.error(format!("unknown form setting `{key}`"))),
        }
        Ok(())
    }

    /// serde's `rename` and `rename_all`; other serde settings are serde's business.
    fn serde(&mut self, attr: &Attribute) -> syn::Result<()> {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                self.rename = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("rename_all") {
                self.rename_all = Some(meta.value()?.parse()?);
            } else if meta.input.peek(Token![=]) {
                meta.value()?.parse::<Expr>()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|nested| {
                    if nested.input.peek(Token![=]) {
                        nested.value()?.parse::<Expr>()?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
    }

    /// The doc comment as one paragraph, if any.
    fn description(&self) -> Option<String> {
        let text = self
            .description
            .iter()
            .filter(|line| !line.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        (!text.is_empty()).then_some(text)
    }
}

/// A `default = …` value: everything up to the next top-level comma, as `json!` input.
fn parse_json_input(input: ParseStream<'_>) -> syn::Result<Tokens> {
    let mut tokens = Tokens::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        let tree: proc_macro2::TokenTree = input.parse()?;
        tokens.extend([tree]);
    }
    Ok(tokens)
}

/// A name as serde writes it under `rename_all`.
fn renamed(name: &str, rule: Option<&LitStr>) -> syn::Result<String> {
    let Some(rule) = rule else {
        return Ok(name.to_owned());
    };
    Ok(match rule.value().as_str() {
        "lowercase" => name.to_lowercase(),
        "UPPERCASE" => name.to_uppercase(),
        "PascalCase" => name.to_upper_camel_case(),
        "camelCase" => name.to_lower_camel_case(),
        "snake_case" => name.to_snake_case(),
        "SCREAMING_SNAKE_CASE" => name.to_shouty_snake_case(),
        "kebab-case" => name.to_kebab_case(),
        "SCREAMING-KEBAB-CASE" => name.to_shouty_kebab_case(),
        other => {
            return Err(syn::Error::new(
                rule.span(),
                format!("unknown rename_all rule `{other}`"),
            ));
        }
    })
}

fn page(input: &DeriveInput) -> syn::Result<Tokens> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            input,
            "FormPage derives for structs; derive FormChoices for an enum of choices",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            input,
            "FormPage derives for structs with named fields",
        ));
    };
    let ident = &input.ident;
    let settings = Settings::of(&input.attrs)?;
    let mut fields = Vec::new();
    let mut lookups = Vec::new();
    for field in &named.named {
        let field_settings = Settings::of(&field.attrs)?;
        let rust_name = field
            .ident
            .as_ref()
            .map(Ident::to_string)
            .unwrap_or_default();
        let name = match &field_settings.rename {
            Some(rename) => rename.value(),
            None => renamed(
                rust_name.trim_start_matches("r#"),
                settings.rename_all.as_ref(),
            )?,
        };
        let ty = &field.ty;
        let base = match &field_settings.lookup {
            Some(lookup) => {
                lookups.push(quote! { (#name, &#lookup as &dyn ::cadre_forms::ChoiceLookup) });
                quote! { <#ty as ::cadre_forms::FormValue>::choice_field(#name, choices.get(#name)) }
            }
            None => quote! { <#ty as ::cadre_forms::FormValue>::field(#name) },
        };
        let refinements = refinements(&field_settings);
        fields.push(quote! { .field(#base #(#refinements)*) });
    }
    let checks = settings
        .checks
        .iter()
        .map(|check| quote! { .check(#check) });
    let model_title = settings
        .title
        .as_ref()
        .map_or_else(|| ident.to_string(), LitStr::value);
    let page = match &settings.title {
        Some(title) => quote! { ::cadre_forms::FormPage::new(#title) },
        None => quote! { ::cadre_forms::FormPage::untitled() },
    };
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::cadre_forms::FormModel for #ident #type_generics #where_clause {
            const NAME: &'static str = #model_title;

            fn form_page(choices: &::cadre_forms::LookedUp) -> ::cadre_forms::FormPage {
                #page #(#fields)* #(#checks)*
            }

            fn lookups() -> ::std::vec::Vec<(&'static str, &'static dyn ::cadre_forms::ChoiceLookup)> {
                ::std::vec![#(#lookups),*]
            }
        }

        impl #impl_generics ::cadre_forms::FormValue for #ident #type_generics #where_clause {
            fn field(name: &str) -> ::cadre_forms::Field {
                ::cadre_forms::Field::model(
                    name,
                    <Self as ::cadre_forms::FormModel>::nested_model(),
                )
            }

            fn item() -> ::cadre_forms::ListItem {
                ::cadre_forms::ListItem::model(<Self as ::cadre_forms::FormModel>::nested_model())
            }
        }
    })
}

/// The builder calls a field's settings add, in a fixed order.
fn refinements(settings: &Settings) -> Vec<Tokens> {
    let mut calls = Vec::new();
    if settings.min_length.is_some() || settings.max_length.is_some() {
        let min = option(settings.min_length.as_ref());
        let max = option(settings.max_length.as_ref());
        calls.push(quote! { .length(#min, #max) });
    }
    if let Some(pattern) = &settings.pattern {
        calls.push(quote! { .pattern(#pattern) });
    }
    if let Some(format) = &settings.format {
        calls.push(quote! { .format(#format) });
    }
    for (bound, limit) in &settings.bounds {
        calls.push(quote! { .#bound(#limit) });
    }
    if settings.min_items.is_some() || settings.max_items.is_some() {
        let min = option(settings.min_items.as_ref());
        let max = option(settings.max_items.as_ref());
        calls.push(quote! { .items(#min, #max) });
    }
    if settings.unique {
        calls.push(quote! { .unique_items() });
    }
    if let Some(default) = &settings.default {
        calls.push(quote! { .default(::cadre_forms::__private::json!(#default)) });
    }
    if let Some(title) = &settings.title {
        calls.push(quote! { .extra("title", ::cadre_forms::__private::json!(#title)) });
    }
    for (key, value) in &settings.extra {
        calls.push(quote! { .extra(#key, ::cadre_forms::__private::json!(#value)) });
    }
    if let Some(description) = settings.description() {
        calls.push(quote! { .description(#description) });
    }
    for check in &settings.checks {
        calls.push(quote! { .check(#check) });
    }
    calls
}

fn option(value: Option<&Expr>) -> Tokens {
    match value {
        Some(value) => quote! { ::std::option::Option::Some(#value) },
        None => quote! { ::std::option::Option::None },
    }
}

fn choices(input: &DeriveInput) -> syn::Result<Tokens> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            input,
            "FormChoices derives for enums of unit variants",
        ));
    };
    let ident = &input.ident;
    let settings = Settings::of(&input.attrs)?;
    let name = settings
        .name
        .as_ref()
        .map_or_else(|| ident.to_string(), LitStr::value);
    let mut options = Vec::new();
    let mut labelled = false;
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                variant,
                "a choice is a unit variant",
            ));
        }
        let variant_settings = Settings::of(&variant.attrs)?;
        let value = match &variant_settings.rename {
            Some(rename) => rename.value(),
            None => renamed(&variant.ident.to_string(), settings.rename_all.as_ref())?,
        };
        let label = match &variant_settings.label {
            Some(label) => {
                labelled = true;
                label.value()
            }
            None => value.clone(),
        };
        options.push((value, label));
    }
    let choices = if labelled {
        let pairs = options
            .iter()
            .map(|(value, label)| quote! { (#value.to_owned(), #label.to_owned()) });
        quote! { ::cadre_forms::Choices::labelled(#name, [#(#pairs),*]) }
    } else {
        let values = options.iter().map(|(value, _)| value);
        quote! { ::cadre_forms::Choices::plain(#name, &[#(#values),*]) }
    };
    Ok(quote! {
        impl ::cadre_forms::FormChoices for #ident {
            fn choices() -> ::cadre_forms::Choices {
                #choices
            }
        }

        impl ::cadre_forms::FormValue for #ident {
            fn field(name: &str) -> ::cadre_forms::Field {
                ::cadre_forms::Field::choice(name, <Self as ::cadre_forms::FormChoices>::choices())
            }

            fn item() -> ::cadre_forms::ListItem {
                ::cadre_forms::ListItem::Choice(<Self as ::cadre_forms::FormChoices>::choices())
            }
        }
    })
}
