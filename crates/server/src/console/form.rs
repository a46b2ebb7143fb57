//! The API-key login form of the connect pages, rendered from a connector's
//! `auth.apiKey.page`: its `title` and `warning`, one input per field the
//! user fills (managed and hidden fields left out), `required` honoured, and
//! the common `uiSchema` hints (`ui:widget` `password`/`textarea`/`hidden`,
//! `ui:placeholder`, `ui:help`/`ui:description`, `ui:autofocus`; a
//! `ui:field: button` is an action of the connector's own UI, not an input,
//! and is left out). Posted values are turned back into the login's
//! `fields`, with an error per field that is not what it must be.

use std::collections::BTreeMap;

use connector_abi::manifest::{ApiKeyPage, FieldType, FormField};
use serde::Serialize;

/// One input of the form, as the template renders it.
#[derive(Debug, Clone, Serialize)]
pub struct InputView {
    /// The field's `const` (the input is named `field.<const>`).
    pub key: String,
    /// The label.
    pub label: String,
    /// `text`, `password`, `number`, `checkbox`, `textarea` or `hidden`.
    pub kind: &'static str,
    /// Must be filled.
    pub required: bool,
    /// Placeholder text.
    pub placeholder: Option<String>,
    /// Help text under the input.
    pub help: Option<String>,
    /// Focused when the page opens.
    pub autofocus: bool,
    /// The value to show again after an error (never a secret's).
    pub value: Option<String>,
    /// The error about this field, shown next to it.
    pub error: Option<String>,
}

/// The form of `page`, with `values` filled back in and `errors` by field.
pub fn inputs(
    page: &ApiKeyPage,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Vec<InputView> {
    page.content
        .iter()
        .filter(|field| shown(field))
        .map(|field| {
            let hint = |name: &str| {
                field
                    .ui_schema
                    .as_ref()
                    .and_then(|ui| ui.get(name))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let kind = kind(field, hint("ui:widget").as_deref());
            InputView {
                key: field.key.clone(),
                label: field.title.clone(),
                kind,
                required: field.required && kind != "checkbox",
                placeholder: hint("ui:placeholder"),
                help: hint("ui:help").or_else(|| hint("ui:description")),
                autofocus: field
                    .ui_schema
                    .as_ref()
                    .and_then(|ui| ui.get("ui:autofocus"))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                value: (!field.is_secret())
                    .then(|| values.get(&field.key).cloned())
                    .flatten(),
                error: errors.get(&field.key).cloned(),
            }
        })
        .collect()
}

/// Whether the user sees the field: not managed by an admin, not hidden,
/// not a button of the connector's own UI.
fn shown(field: &FormField) -> bool {
    let button = field
        .ui_schema
        .as_ref()
        .and_then(|ui| ui.get("ui:field"))
        .and_then(|v| v.as_str())
        == Some("button");
    !(field.managed || field.hidden || button)
}

/// The input type of a field.
fn kind(field: &FormField, widget: Option<&str>) -> &'static str {
    match (field.field_type, widget) {
        (FieldType::Boolean, _) => "checkbox",
        (_, Some("hidden")) => "hidden",
        (FieldType::Number | FieldType::Integer, _) => "number",
        (_, Some("password")) => "password",
        (_, Some("textarea")) => "textarea",
        _ if field.is_secret() => "password",
        _ => "text",
    }
}

/// The posted form turned into the login's `fields`: each shown field's
/// value in its type, empty optional fields left out. `Err` maps each bad
/// field to what was expected.
pub fn fields(
    page: &ApiKeyPage,
    posted: &BTreeMap<String, String>,
) -> Result<serde_json::Map<String, serde_json::Value>, BTreeMap<String, String>> {
    let mut values = serde_json::Map::new();
    let mut errors = BTreeMap::new();
    for field in page.content.iter().filter(|field| shown(field)) {
        let raw = posted.get(&field.key).map(|v| v.trim()).unwrap_or("");
        if field.field_type == FieldType::Boolean {
            values.insert(field.key.clone(), (!raw.is_empty()).into());
            continue;
        }
        if raw.is_empty() {
            if field.required {
                errors.insert(field.key.clone(), format!("{} is required", field.title));
            }
            continue;
        }
        match typed(field.field_type, raw) {
            Some(value) => {
                values.insert(field.key.clone(), value);
            }
            None => {
                errors.insert(
                    field.key.clone(),
                    format!("{} must be a {}", field.title, type_name(field.field_type)),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// `raw` as a JSON value of `field_type`, if it is one.
pub(crate) fn typed(field_type: FieldType, raw: &str) -> Option<serde_json::Value> {
    match field_type {
        FieldType::String => Some(raw.into()),
        FieldType::Integer => raw.parse::<i64>().ok().map(Into::into),
        FieldType::Number => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number),
        FieldType::Boolean => Some((!raw.is_empty()).into()),
    }
}

pub(crate) fn type_name(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::String => "text",
        FieldType::Integer => "whole number",
        FieldType::Number => "number",
        FieldType::Boolean => "yes/no",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> ApiKeyPage {
        serde_json::from_value(serde_json::json!({
            "title": "Acme",
            "warning": "Copy the key from settings",
            "content": [
                {"const": "getKey", "title": "Get key", "type": "string", "uiSchema": {"ui:field": "button"}},
                {"const": "apiKey", "title": "API key", "type": "string", "required": true},
                {"const": "region", "title": "Region", "type": "string", "uiSchema": {"ui:placeholder": "eu", "ui:help": "Your data centre"}},
                {"const": "limit", "title": "Limit", "type": "integer"},
                {"const": "sandbox", "title": "Sandbox", "type": "boolean"},
                {"const": "clientSecret", "title": "Secret", "type": "string", "managed": true},
                {"const": "internal", "title": "Internal", "type": "string", "hidden": true}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn managed_hidden_and_button_fields_are_left_out() {
        let shown: Vec<_> = inputs(&page(), &BTreeMap::new(), &BTreeMap::new())
            .into_iter()
            .map(|i| (i.key, i.kind))
            .collect();
        assert_eq!(
            shown,
            [
                ("apiKey".to_string(), "password"),
                ("region".to_string(), "text"),
                ("limit".to_string(), "number"),
                ("sandbox".to_string(), "checkbox"),
            ]
        );
    }

    #[test]
    fn secrets_are_never_filled_back_in() {
        let values = BTreeMap::from([
            ("apiKey".to_string(), "sk-secret".to_string()),
            ("region".to_string(), "eu".to_string()),
        ]);
        let inputs = inputs(&page(), &values, &BTreeMap::new());
        assert_eq!(inputs[0].value, None);
        assert_eq!(inputs[1].value.as_deref(), Some("eu"));
        assert_eq!(inputs[1].placeholder.as_deref(), Some("eu"));
        assert_eq!(inputs[1].help.as_deref(), Some("Your data centre"));
    }

    #[test]
    fn posted_values_are_typed_and_bad_ones_named() {
        let posted = BTreeMap::from([
            ("limit".to_string(), "ten".to_string()),
            ("clientSecret".to_string(), "smuggled".to_string()),
        ]);
        let errors = fields(&page(), &posted).unwrap_err();
        assert_eq!(errors["apiKey"], "API key is required");
        assert_eq!(errors["limit"], "Limit must be a whole number");
        let posted = BTreeMap::from([
            ("apiKey".to_string(), " k ".to_string()),
            ("limit".to_string(), "10".to_string()),
            ("sandbox".to_string(), "on".to_string()),
            ("clientSecret".to_string(), "smuggled".to_string()),
        ]);
        let values = fields(&page(), &posted).unwrap();
        assert_eq!(
            serde_json::Value::Object(values),
            serde_json::json!({"apiKey": "k", "limit": 10, "sandbox": true})
        );
    }
}
