//! Validation of one submitted page, with pydantic's error types and messages.

use serde_json::{Map, Value, json};

use crate::ValidationError;
use crate::components::{ACCEPTED, INCOMPLETE};
use crate::constraints::{Bounds, OutOfBounds};
use crate::page::{FieldKind, FormPage, ListItem};

pub(crate) fn page(
    page: &FormPage,
    answer: &Value,
) -> Result<Map<String, Value>, Vec<ValidationError>> {
    let Value::Object(submitted) = answer else {
        let class_name = match (&page.title, page.nested) {
            (Some(title), true) => title.as_str(),
            _ => "FormPage",
        };
        return Err(vec![
            ValidationError::new(
                "model_type",
                vec![],
                format!("Input should be a valid dictionary or instance of {class_name}"),
                answer,
            )
            .with_ctx("class_name", json!(class_name)),
        ]);
    };
    let mut errors = Vec::new();
    let mut values = Map::with_capacity(page.fields.len());
    for field in &page.fields {
        let loc = Loc::Field(&field.name);
        if field.is_display_only() {
            // Whatever is submitted, display-only fields keep their declared value.
            values.insert(
                field.name.clone(),
                field.default.clone().unwrap_or(Value::Null),
            );
            continue;
        }
        let Some(value) = submitted.get(&field.name) else {
            match &field.default {
                Some(default) => {
                    values.insert(field.name.clone(), default.clone());
                }
                None => errors.push(ValidationError::new(
                    "missing",
                    loc.to_vec(),
                    "field required",
                    answer,
                )),
            }
            continue;
        };
        if field.nullable && value.is_null() {
            values.insert(field.name.clone(), Value::Null);
            continue;
        }
        match check_kind(&field.kind, value, &loc) {
            Ok(checked) => {
                let custom: Vec<ValidationError> = field
                    .checks
                    .iter()
                    .filter_map(|check| check(&checked).err())
                    .map(|message| {
                        ValidationError::new("value_error", loc.to_vec(), message.clone(), value)
                            .with_ctx("error", json!(message))
                    })
                    .collect();
                if custom.is_empty() {
                    values.insert(field.name.clone(), checked);
                } else {
                    errors.extend(custom);
                }
            }
            Err(field_errors) => errors.extend(field_errors),
        }
    }
    for (name, value) in submitted.iter().filter(|_| !page.nested) {
        if !page.fields.iter().any(|field| &field.name == name) {
            errors.push(ValidationError::new(
                "extra_forbidden",
                vec![json!(name)],
                "Extra inputs are not permitted",
                value,
            ));
        }
    }
    if errors.is_empty() {
        for check in &page.checks {
            if let Err(message) = check(&values) {
                errors.push(
                    ValidationError::new(
                        "value_error",
                        vec![json!("__root__")],
                        message.clone(),
                        answer,
                    )
                    .with_ctx("error", json!(message)),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(capped(errors))
    }
}

/// Where a value is in the answer; pydantic's `loc` is built from it only for an error.
enum Loc<'a> {
    /// A field of the page.
    Field(&'a str),
    /// An item of a list.
    Item(&'a Loc<'a>, usize),
}

impl Loc<'_> {
    fn to_vec(&self) -> Vec<Value> {
        match self {
            Self::Field(name) => vec![json!(name)],
            Self::Item(list, index) => {
                let mut loc = list.to_vec();
                loc.push(json!(index));
                loc
            }
        }
    }
}

/// The most errors a page is answered with; the others are counted in one more error.
pub const MAX_ERRORS: usize = 50;

/// `errors`, at most [`MAX_ERRORS`] of them and a `too_many_errors` error counting the rest, so
/// that an answer does not grow with what was sent.
fn capped(mut errors: Vec<ValidationError>) -> Vec<ValidationError> {
    if errors.len() > MAX_ERRORS {
        let rest = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        errors.push(
            ValidationError::new(
                "too_many_errors",
                vec![],
                format!("{rest} more errors are not listed; fix these and send the page again"),
                &Value::Null,
            )
            .with_ctx("more", json!(rest)),
        );
    }
    errors
}

/// Checks one value against its kind; returns it normalised (numbers parsed, read-only values
/// kept as declared).
fn check_kind(
    kind: &FieldKind,
    value: &Value,
    loc: &Loc<'_>,
) -> Result<Value, Vec<ValidationError>> {
    let error = |kind: &str, msg: String| ValidationError::new(kind, loc.to_vec(), msg, value);
    match kind {
        FieldKind::String {
            min_length,
            max_length,
            pattern,
            ..
        } => {
            let Value::String(text) = value else {
                return Err(vec![error(
                    "string_type",
                    "Input should be a valid string".to_owned(),
                )]);
            };
            let length = text.chars().count() as u64;
            if let Some(min) = min_length.filter(|min| length < *min) {
                let plural = if min == 1 { "character" } else { "characters" };
                return Err(vec![
                    error(
                        "string_too_short",
                        format!("String should have at least {min} {plural}"),
                    )
                    .with_ctx("min_length", json!(min)),
                ]);
            }
            if let Some(max) = max_length.filter(|max| length > *max) {
                let plural = if max == 1 { "character" } else { "characters" };
                return Err(vec![
                    error(
                        "string_too_long",
                        format!("String should have at most {max} {plural}"),
                    )
                    .with_ctx("max_length", json!(max)),
                ]);
            }
            if let Some(pattern) = pattern.as_ref().filter(|p| !p.is_match(text)) {
                return Err(vec![
                    error(
                        "string_pattern_mismatch",
                        format!("String should match pattern '{}'", pattern.as_str()),
                    )
                    .with_ctx("pattern", json!(pattern.as_str())),
                ]);
            }
            Ok(value.clone())
        }
        FieldKind::Uuid { .. } => uuid(value, loc),
        FieldKind::Integer(bounds) => integer(value, bounds, loc),
        FieldKind::Number(bounds) => number(value, bounds, loc),
        FieldKind::Model(model) => nested(model, value, loc),
        FieldKind::Boolean => match value {
            Value::Bool(flag) => Ok(json!(flag)),
            Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" | "t" | "y" => Ok(json!(true)),
                "false" | "no" | "off" | "0" | "f" | "n" => Ok(json!(false)),
                _ => Err(vec![error(
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input".to_owned(),
                )]),
            },
            Value::Number(number) if number.as_i64() == Some(0) => Ok(json!(false)),
            Value::Number(number) if number.as_i64() == Some(1) => Ok(json!(true)),
            _ => Err(vec![error(
                "bool_type",
                "Input should be a valid boolean".to_owned(),
            )]),
        },
        FieldKind::Choice { choices, .. } => match value.as_str() {
            Some(choice) if choices.contains(choice) => Ok(value.clone()),
            _ => Err(vec![
                error("enum", format!("Input should be {}", choices.expected()))
                    .with_ctx("expected", json!(choices.expected())),
            ]),
        },
        FieldKind::List {
            item: item_kind,
            min_items,
            max_items,
            unique,
        } => {
            let Value::Array(items) = value else {
                return Err(vec![error(
                    "list_type",
                    "Input should be a valid list".to_owned(),
                )]);
            };
            let mut errors = Vec::new();
            let mut checked = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let item_loc = Loc::Item(loc, index);
                match check_item(item_kind, item, &item_loc) {
                    Ok(value) => checked.push(value),
                    Err(item_errors) => errors.extend(item_errors),
                }
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            // pydantic-forms makes unique lists by validating a list and then its length,
            // which pydantic reports as a `Value`'s.
            let field_type = if *unique { "Value" } else { "List" };
            let count = items.len() as u64;
            if let Some(min) = min_items.filter(|min| count < *min) {
                let plural = if min == 1 { "item" } else { "items" };
                return Err(vec![
                    error(
                        "too_short",
                        format!(
                            "{field_type} should have at least {min} {plural} after validation, not {count}"
                        ),
                    )
                    .with_ctx("field_type", json!(field_type))
                    .with_ctx("min_length", json!(min))
                    .with_ctx("actual_length", json!(count)),
                ]);
            }
            if let Some(max) = max_items.filter(|max| count > *max) {
                let plural = if max == 1 { "item" } else { "items" };
                return Err(vec![
                    error(
                        "too_long",
                        format!(
                            "{field_type} should have at most {max} {plural} after validation, not {count}"
                        ),
                    )
                    .with_ctx("field_type", json!(field_type))
                    .with_ctx("max_length", json!(max))
                    .with_ctx("actual_length", json!(count)),
                ]);
            }
            let distinct: std::collections::HashSet<String> =
                checked.iter().map(Value::to_string).collect();
            if *unique && distinct.len() != checked.len() {
                return Err(vec![error("unique_list", "List must be unique".to_owned())]);
            }
            Ok(Value::Array(checked))
        }
        FieldKind::ReadOnly(declared) => read_only(declared, value, loc),
        FieldKind::Literal(choices) => match value.as_str() {
            Some(choice) if choices.contains(choice) => Ok(value.clone()),
            _ => Err(vec![
                error(
                    "literal_error",
                    format!("Input should be {}", choices.expected()),
                )
                .with_ctx("expected", json!(choices.expected())),
            ]),
        },
        FieldKind::Accept(_) => match value.as_str() {
            Some(ACCEPTED) => Ok(value.clone()),
            Some(INCOMPLETE) => {
                let message = "Not all tasks are done";
                Err(vec![
                    error("value_error", message.to_owned()).with_ctx("error", json!(message)),
                ])
            }
            _ => {
                let expected = format!("'{ACCEPTED}' or '{INCOMPLETE}'");
                Err(vec![
                    error("enum", format!("Input should be {expected}"))
                        .with_ctx("expected", json!(expected)),
                ])
            }
        },
        FieldKind::Label
        | FieldKind::Divider
        | FieldKind::Hidden
        | FieldKind::Panel { .. }
        | FieldKind::DisplaySubscription => Ok(value.clone()),
    }
}

/// Checks one list item at `loc`: a choice, a text, or a nested model (whose errors are located
/// under the item).
fn check_item(kind: &ListItem, item: &Value, loc: &Loc<'_>) -> Result<Value, Vec<ValidationError>> {
    match kind {
        ListItem::Choice(choices) => match item.as_str() {
            Some(choice) if choices.contains(choice) => Ok(item.clone()),
            _ => Err(vec![
                ValidationError::new(
                    "enum",
                    loc.to_vec(),
                    format!("Input should be {}", choices.expected()),
                    item,
                )
                .with_ctx("expected", json!(choices.expected())),
            ]),
        },
        ListItem::Integer(bounds) => integer(item, bounds, loc),
        ListItem::Number(bounds) => number(item, bounds, loc),
        ListItem::Uuid => uuid(item, loc),
        ListItem::Text => match item {
            Value::String(_) => Ok(item.clone()),
            _ => Err(vec![ValidationError::new(
                "string_type",
                loc.to_vec(),
                "Input should be a valid string",
                item,
            )]),
        },
        ListItem::Model(model) => nested(model, item, loc),
    }
}

/// A UUID written as text, normalised to its hyphenated lower-case form.
fn uuid(value: &Value, loc: &Loc<'_>) -> Result<Value, Vec<ValidationError>> {
    let error = |kind: &str, msg: String| ValidationError::new(kind, loc.to_vec(), msg, value);
    match value.as_str().map(uuid::Uuid::parse_str) {
        Some(Ok(id)) => Ok(json!(id)),
        Some(Err(parse)) => Err(vec![
            error(
                "uuid_parsing",
                format!("Input should be a valid UUID, {parse}"),
            )
            .with_ctx("error", json!(parse.to_string())),
        ]),
        None => Err(vec![error(
            "uuid_type",
            "UUID input should be a string, bytes or UUID object".to_owned(),
        )]),
    }
}

/// A read-only value: left out it is the declared one; sent, it must be the declared one.
fn read_only(
    declared: &Value,
    value: &Value,
    loc: &Loc<'_>,
) -> Result<Value, Vec<ValidationError>> {
    if value == declared {
        return Ok(declared.clone());
    }
    let error = if declared.is_array() {
        let message = "Cannot change values for a readonly list";
        ValidationError::new("value_error", loc.to_vec(), message, value)
            .with_ctx("error", json!(message))
    } else {
        let expected = python_repr(declared);
        ValidationError::new(
            "literal_error",
            loc.to_vec(),
            format!("Input should be {expected}"),
            value,
        )
        .with_ctx("expected", json!(expected))
    };
    Err(vec![error])
}

/// How Python writes a JSON value in a message: `'text'`, `True`, `None`, `5`.
fn python_repr(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{text}'"),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

/// A nested model's values, or its errors located under `loc`.
fn nested(model: &FormPage, value: &Value, loc: &Loc<'_>) -> Result<Value, Vec<ValidationError>> {
    page(model, value).map(Value::Object).map_err(|errors| {
        errors
            .into_iter()
            .map(|mut error| {
                let mut located = loc.to_vec();
                located.append(&mut error.loc);
                error.loc = located;
                error
            })
            .collect()
    })
}

/// A whole number as pydantic's lax mode reads it (from a number without a fractional part, a
/// string of digits, or a boolean), within `bounds`.
fn integer(value: &Value, bounds: &Bounds, loc: &Loc<'_>) -> Result<Value, Vec<ValidationError>> {
    let error = |kind: &str, msg: &str| vec![ValidationError::new(kind, loc.to_vec(), msg, value)];
    let whole = match value {
        Value::Number(number) => match number.as_i64() {
            Some(whole) => whole,
            None => match number.as_f64() {
                Some(float) if float.fract() == 0.0 && float.abs() < 9.2e18 => float as i64,
                _ => {
                    return Err(error(
                        "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part",
                    ));
                }
            },
        },
        Value::String(text) => parse_integer(text).ok_or_else(|| {
            error(
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )
        })?,
        Value::Bool(flag) => i64::from(*flag),
        _ => return Err(error("int_type", "Input should be a valid integer")),
    };
    bounds
        .check_integer(whole)
        .map(|()| json!(whole))
        .map_err(|out| vec![out_of_bounds(out, loc, value)])
}

/// pydantic's reading of an integer string: surrounding whitespace, `_` between digits and a
/// fractional part of zeros are allowed.
fn parse_integer(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = match text.split_once('.') {
        Some((whole, zeros)) if zeros.chars().all(|c| c == '0') => whole,
        Some(_) => return None,
        None => text,
    };
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_placed = !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
    if !well_placed {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// A number as pydantic's lax mode reads it (from a number, a numeric string or a boolean),
/// within `bounds`. JSON cannot carry infinity or NaN, so they are refused as `finite_number`.
fn number(value: &Value, bounds: &Bounds, loc: &Loc<'_>) -> Result<Value, Vec<ValidationError>> {
    let error = |kind: &str, msg: &str| vec![ValidationError::new(kind, loc.to_vec(), msg, value)];
    let float = match value {
        Value::Number(number) => number.as_f64().unwrap_or(f64::NAN),
        Value::String(text) => text.trim().replace('_', "").parse::<f64>().map_err(|_| {
            error(
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            )
        })?,
        Value::Bool(flag) => f64::from(u8::from(*flag)),
        _ => return Err(error("float_type", "Input should be a valid number")),
    };
    if !float.is_finite() {
        return Err(error("finite_number", "Input should be a finite number"));
    }
    bounds
        .check_float(float)
        .map(|()| json!(float))
        .map_err(|out| vec![out_of_bounds(out, loc, value)])
}

fn out_of_bounds(out: OutOfBounds, loc: &Loc<'_>, value: &Value) -> ValidationError {
    ValidationError::new(out.kind, loc.to_vec(), out.message(), value)
        .with_ctx(out.ctx_key, out.limit())
}
