//! The `#[connector]` attribute of `connector-sdk`. Use it through
//! `connector_sdk::connector`, not directly.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
use proc_macro::TokenStream;
use quote::quote;
use syn::{ImplItem, ItemImpl, Type, parse_macro_input, spanned::Spanned};

/// The Rust method names of the hooks, from the one hook list in `connector-abi`.
fn hook_names() -> Vec<&'static str> {
    connector_abi::Hook::ALL
        .iter()
        .map(|hook| hook.rust_name())
        .collect()
}

/// Exports an `impl Connector for T` block as the connector of this crate.
///
/// Records which hooks the block implements (so the host never calls the
/// others), embeds `connector.json` next to `Cargo.toml` as the component's
/// manifest, and generates the component exports.
#[proc_macro_attribute]
pub fn connector(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::TokenStream::from(attr).span(),
            "#[connector] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let block = parse_macro_input!(item as ItemImpl);
    match expand(&block) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(block: &ItemImpl) -> syn::Result<proc_macro2::TokenStream> {
    let is_connector_impl = block
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|segment| segment.ident == "Connector");
    if !is_connector_impl {
        return Err(syn::Error::new(
            block.span(),
            "#[connector] goes on an `impl Connector for YourType` block",
        ));
    }
    let ty = match &*block.self_ty {
        Type::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
            path.path.get_ident().cloned().expect("checked above")
        }
        other => {
            return Err(syn::Error::new(
                other.span(),
                "#[connector] needs a plain type name such as `MyCrm` (no generics or paths)",
            ));
        }
    };

    let mut hooks = Vec::new();
    for item in &block.items {
        if let ImplItem::Fn(function) = item {
            let name = function.sig.ident.to_string();
            let hooks_list = hook_names();
            if !hooks_list.contains(&name.as_str()) {
                return Err(syn::Error::new(
                    function.sig.ident.span(),
                    format!(
                        "`{name}` is not a connector hook; the hooks are: {}",
                        hooks_list.join(", ")
                    ),
                ));
            }
            hooks.push(name.replace('_', "-"));
        }
    }
    let hooks = syn::LitByteStr::new(hooks.join(",").as_bytes(), block.span());

    Ok(quote! {
        #block
        ::connector_sdk::__export_connector!(#ty, #hooks);
    })
}
