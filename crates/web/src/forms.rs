//! One generic renderer for the forms workflows ask for: a page's pydantic-forms JSON Schema
//! becomes labelled HTML fields, and what the browser posts becomes the page's JSON again.
//!
//! Every kind cadre-forms emits has a field: text (with its bounds), email, integers and numbers
//! (bounds, steps), booleans, a choice (a dropdown from `enum` and its `options` labels),
//! several choices (a multiple select), lists of texts or numbers (one per line), labels,
//! callouts, markdown and summaries (text only), dividers, hidden and read-only values, accept
//! checklists (the items and one box to tick), defaults and nullable fields. What has no field
//! of its own (nested models and lists of them) is edited as JSON.

use std::collections::BTreeMap;

use cadre_domain::forms::ValidationError;
use serde::Serialize;
use serde_json::{Map, Value};

/// A choice of a dropdown.
#[derive(Debug, Serialize)]
pub(crate) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A field as the template draws it.
#[derive(Debug, Serialize)]
pub(crate) struct FieldView {
    name: String,
    label: String,
    /// `text`, `email`, `number`, `checkbox`, `select`, `multiselect`, `lines`, `json`, `label`,
    /// `divider`, `hidden`, `readonly` or `accept`.
    kind: &'static str,
    /// The items an `accept` field shows.
    items: Vec<String>,
    required: bool,
    value: String,
    checked: bool,
    choices: Vec<Choice>,
    min: Option<String>,
    max: Option<String>,
    step: Option<String>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    hint: Option<String>,
    error: Option<String>,
}

/// A property's schema with `$ref` and a nullable `anyOf` resolved: what it is, and whether
/// `null` is allowed.
fn resolve(root: &Value, property: &Value) -> (Map<String, Value>, bool) {
    let mut resolved = property.as_object().cloned().unwrap_or_default();
    let mut nullable = false;
    if let Some(branches) = resolved
        .remove("anyOf")
        .and_then(|branches| branches.as_array().cloned())
    {
        for branch in branches {
            if branch.get("type") == Some(&Value::String("null".to_owned())) {
                nullable = true;
            } else if let Value::Object(branch) = branch {
                for (key, value) in branch {
                    resolved.entry(key).or_insert(value);
                }
            }
        }
    }
    if let Some(Value::String(reference)) = resolved.remove("$ref")
        && let Some(name) = reference.strip_prefix("#/$defs/")
        && let Some(Value::Object(definition)) = root.pointer(&format!("/$defs/{name}"))
    {
        for (key, value) in definition {
            if key != "title" {
                resolved.entry(key.clone()).or_insert(value.clone());
            }
        }
    }
    (resolved, nullable)
}

/// The text of a scalar as a form field holds it.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a display-only block shows: a callout's header and message, a markdown block's
/// content, a summary's table as text, or the text itself.
fn shown(value: &Value) -> String {
    let Some(object) = value.as_object() else {
        return text(value);
    };
    let parts: Vec<String> = ["header", "message", "content"]
        .iter()
        .filter_map(|key| object.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if parts.is_empty() {
        value.to_string()
    } else {
        parts.join(": ")
    }
}

/// The choices of an `enum`, labelled by `options` when it has them.
fn choices(schema: &Map<String, Value>, selected: &[String]) -> Vec<Choice> {
    let labels = schema.get("options").and_then(Value::as_object);
    schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|value| {
            let value = text(value);
            Choice {
                label: labels
                    .and_then(|labels| labels.get(&value))
                    .map_or_else(|| value.clone(), text),
                selected: selected.contains(&value),
                value,
            }
        })
        .collect()
}

/// The kind of field `schema` (resolved) gets.
fn kind_of(root: &Value, schema: &Map<String, Value>) -> &'static str {
    match schema.get("format").and_then(Value::as_str) {
        Some("label" | "callout" | "markdown" | "summary") => return "label",
        Some("divider") => return "divider",
        Some("hidden") => return "hidden",
        Some("accept") => return "accept",
        _ => {}
    }
    if schema.contains_key("const") || schema.get("readOnly") == Some(&Value::Bool(true)) {
        return "readonly";
    }
    if schema.contains_key("enum") {
        return "select";
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("boolean") => "checkbox",
        Some("integer" | "number") => "number",
        Some("string") if schema.get("format").and_then(Value::as_str) == Some("email") => "email",
        Some("string") => "text",
        Some("array") => {
            let items = schema.get("items").map(|items| resolve(root, items).0);
            match items.as_ref().map(|items| {
                (
                    items.contains_key("enum"),
                    items.get("type").and_then(Value::as_str),
                )
            }) {
                Some((true, _)) => "multiselect",
                Some((false, Some("string" | "integer" | "number"))) => "lines",
                _ => "json",
            }
        }
        _ => "json",
    }
}

/// The fields of page `schema`, filled with `answers` (what was posted, or defaults), with the
/// `errors` whose `loc` starts with a field's name shown at that field.
pub(crate) fn fields(
    schema: &Value,
    answers: &Map<String, Value>,
    errors: &[ValidationError],
) -> Vec<FieldView> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let (resolved, nullable) = resolve(schema, property);
            let kind = kind_of(schema, &resolved);
            let answer = answers
                .get(name)
                .or_else(|| resolved.get("const"))
                .or_else(|| resolved.get("default"))
                .cloned()
                .unwrap_or(Value::Null);
            let listed: Vec<String> = answer
                .as_array()
                .map_or_else(Vec::new, |items| items.iter().map(text).collect());
            let choices = match kind {
                "select" => choices(&resolved, &[text(&answer)]),
                "multiselect" => resolved
                    .get("items")
                    .map(|items| choices(&resolve(schema, items).0, &listed))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let value = match kind {
                "label" => match resolved.get("extraProperties") {
                    Some(shown_beside) if answer.is_null() => shown(&shown_beside["data"]),
                    _ => shown(&answer),
                },
                "lines" => listed.join("\n"),
                "json" | "readonly" if !answer.is_null() && !answer.is_string() => {
                    answer.to_string()
                }
                _ => text(&answer),
            };
            let bound = |inclusive: &str, exclusive: &str| {
                resolved
                    .get(inclusive)
                    .or_else(|| resolved.get(exclusive))
                    .map(text)
            };
            let integer = resolved.get("type").and_then(Value::as_str) == Some("integer");
            let error = errors
                .iter()
                .filter(|error| error.loc.first().and_then(Value::as_str) == Some(name.as_str()))
                .map(|error| error.msg.clone())
                .collect::<Vec<_>>();
            let mut hints = Vec::new();
            if let Some(description) = resolved.get("description").and_then(Value::as_str) {
                hints.push(description.to_owned());
            }
            if let Some(pattern) = resolved.get("pattern").and_then(Value::as_str) {
                hints.push(format!("Must match {pattern}"));
            }
            for (key, said) in [("minItems", "at least"), ("maxItems", "at most")] {
                if let Some(count) = resolved.get(key).and_then(Value::as_u64) {
                    hints.push(format!("Choose {said} {count}"));
                }
            }
            if kind == "json" {
                hints.push("JSON".to_owned());
            }
            if resolved.get("format").and_then(Value::as_str) == Some("timestamp") {
                hints.push("Seconds since 1970-01-01 UTC".to_owned());
            }
            let items = resolved
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|item| item.get(0).map(text))
                .collect();
            FieldView {
                label: resolved
                    .get("title")
                    .or_else(|| property.get("title"))
                    .map_or_else(|| name.clone(), text),
                name: name.clone(),
                kind,
                items,
                required: required.contains(&name.as_str())
                    && !nullable
                    && !matches!(kind, "checkbox" | "accept"),
                checked: answer == Value::Bool(true) || answer == "ACCEPTED",
                value,
                choices,
                min: bound("minimum", "exclusiveMinimum"),
                max: bound("maximum", "exclusiveMaximum"),
                step: resolved.get("multipleOf").map(text).or_else(|| {
                    (kind == "number").then(|| if integer { "1" } else { "any" }.to_owned())
                }),
                min_length: resolved.get("minLength").and_then(Value::as_u64),
                max_length: resolved.get("maxLength").and_then(Value::as_u64),
                hint: (!hints.is_empty()).then(|| hints.join(". ")),
                error: (!error.is_empty()).then(|| error.join(" ")),
            }
        })
        .collect()
}

/// The page `schema` asks for, from what the browser posted (`posted`: name to values, in
/// order): texts as given, numbers as numbers, booleans from checkboxes, choices as their
/// `enum` values, lists one item a line, JSON as parsed; an empty optional field is left out
/// (its default applies) and an empty nullable one is `null`. What does not parse is passed on
/// as text, for the form's own validation to refuse with its message.
pub(crate) fn page_from(schema: &Value, posted: &BTreeMap<String, Vec<String>>) -> Value {
    let mut page = Map::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Value::Object(page);
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, property) in properties {
        let (resolved, nullable) = resolve(schema, property);
        let kind = kind_of(schema, &resolved);
        let values = posted.get(name).cloned().unwrap_or_default();
        let first = values.first().cloned().unwrap_or_default();
        let typed = |text: &str, schema: &Map<String, Value>| -> Value {
            if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
                return choices
                    .iter()
                    .find(|choice| self::text(choice) == text)
                    .cloned()
                    .unwrap_or_else(|| Value::String(text.to_owned()));
            }
            match schema.get("type").and_then(Value::as_str) {
                Some("integer") => text
                    .trim()
                    .parse::<i64>()
                    .map_or_else(|_| Value::String(text.to_owned()), Value::from),
                Some("number") => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(text.to_owned()), Value::Number),
                _ => Value::String(text.to_owned()),
            }
        };
        // An empty field is left out (its default applies), or null where null is allowed; a
        // required text stays empty, for the form to say it is too short.
        let blank =
            first.is_empty() && !matches!(kind, "checkbox" | "accept" | "multiselect" | "lines");
        let required_text = matches!(kind, "text" | "email") && required.contains(&name.as_str());
        if matches!(kind, "label" | "divider") || (blank && !required_text && !nullable) {
            continue;
        }
        let items = || {
            resolved
                .get("items")
                .map(|items| resolve(schema, items).0)
                .unwrap_or_default()
        };
        let value = match kind {
            _ if blank && !required_text => Value::Null,
            "checkbox" => Value::Bool(values.iter().any(|value| value == "true")),
            "accept" if values.iter().any(|value| value == "true") => Value::from("ACCEPTED"),
            "accept" => Value::from("INCOMPLETE"),
            "multiselect" => {
                let items = items();
                Value::Array(
                    values
                        .iter()
                        .filter(|value| !value.is_empty())
                        .map(|value| typed(value, &items))
                        .collect(),
                )
            }
            "lines" => {
                let items = items();
                Value::Array(
                    first
                        .lines()
                        .map(str::trim)
                        .filter(|line| !line.is_empty())
                        .map(|line| typed(line, &items))
                        .collect(),
                )
            }
            "json" | "readonly" => serde_json::from_str(&first).unwrap_or(Value::String(first)),
            _ => typed(&first, &resolved),
        };
        page.insert(name.clone(), value);
    }
    Value::Object(page)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cadre_forms::{AcceptItem, Field, FormPage};
    use serde_json::{Map, json};

    use super::{fields, page_from};

    fn page() -> FormPage {
        FormPage::untitled()
            .field(Field::callout(
                "careful",
                Some("Careful"),
                Some("It is live"),
                "warning",
            ))
            .field(Field::markdown("help", "**Bold** words", "primary"))
            .field(Field::number("ratio").gt(0).le(2.5).multiple_of(0.5))
            .field(Field::literal("plan", &["small", "large"]))
            .field(Field::read_only("owner", json!("alice")))
            .field(Field::accept(
                "confirm",
                &[("Backups are made", AcceptItem::Checkbox)],
            ))
    }

    #[test]
    fn every_component_gets_a_field_and_what_is_posted_validates() {
        let page = page();
        let schema = page.schema();
        let shown = fields(&schema, &Map::new(), &[]);
        let kinds: Vec<(&str, &str)> = shown
            .iter()
            .map(|field| (field.name.as_str(), field.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("careful", "label"),
                ("help", "label"),
                ("ratio", "number"),
                ("plan", "select"),
                ("owner", "readonly"),
                ("confirm", "accept"),
            ]
        );
        assert_eq!(shown[0].value, "Careful: It is live");
        assert_eq!(shown[1].value, "**Bold** words");
        assert_eq!(
            (
                shown[2].min.as_deref(),
                shown[2].max.as_deref(),
                shown[2].step.as_deref()
            ),
            (Some("0"), Some("2.5"), Some("0.5"))
        );
        assert_eq!(shown[5].items, ["Backups are made"]);

        let posted: BTreeMap<String, Vec<String>> = [
            ("ratio", vec!["1.5"]),
            ("plan", vec!["large"]),
            ("owner", vec!["alice"]),
            ("confirm", vec!["false", "true"]),
        ]
        .into_iter()
        .map(|(name, values)| {
            (
                name.to_owned(),
                values.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
        let answer = page_from(&schema, &posted);
        let values = page.validate(&answer).unwrap();
        assert_eq!(
            (&values["ratio"], &values["plan"], &values["confirm"]),
            (&json!(1.5), &json!("large"), &json!("ACCEPTED"))
        );
        let unticked = BTreeMap::from([("confirm".to_owned(), vec!["false".to_owned()])]);
        assert_eq!(
            page_from(&schema, &unticked)["confirm"],
            json!("INCOMPLETE")
        );
    }
}
