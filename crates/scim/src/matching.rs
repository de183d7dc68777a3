//! Whether a resource, as SCIM JSON, matches a filter (RFC 7644 §3.4.2.2): attribute names in
//! any case, a multi-valued attribute matching when one of its values does (a complex one by its
//! `value`), strings compared with or without case as the attribute's `caseExact` says.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};

/// Whether an attribute's strings are compared with case (its `caseExact` in the schema).
pub type CaseExact<'a> = &'a dyn Fn(&AttrPath) -> bool;

/// Whether `resource` matches `filter`, comparing the strings of the attributes `case_exact`
/// names with case and the others without.
pub fn matches(filter: &Filter, resource: &Value, case_exact: CaseExact) -> bool {
    match filter {
        Filter::Attr(expression) => attribute(expression, resource, None, case_exact),
        Filter::ValuePath(path) => elements(resource, &path.attr)
            .iter()
            .any(|value| value_matches(&path.filter, value, &path.attr, case_exact)),
        Filter::And(left, right) => {
            matches(left, resource, case_exact) && matches(right, resource, case_exact)
        }
        Filter::Or(left, right) => {
            matches(left, resource, case_exact) || matches(right, resource, case_exact)
        }
        Filter::Not(inner) => !matches(inner, resource, case_exact),
    }
}

/// Whether `value`, one value of the multi-valued attribute `within`, matches `filter`.
pub(crate) fn value_matches(
    filter: &ValFilter,
    value: &Value,
    within: &AttrPath,
    case_exact: CaseExact,
) -> bool {
    match filter {
        ValFilter::Attr(expression) => attribute(expression, value, Some(within), case_exact),
        ValFilter::And(left, right) => {
            value_matches(left, value, within, case_exact)
                && value_matches(right, value, within, case_exact)
        }
        ValFilter::Or(left, right) => {
            value_matches(left, value, within, case_exact)
                || value_matches(right, value, within, case_exact)
        }
        ValFilter::Not(inner) => !value_matches(inner, value, within, case_exact),
    }
}

/// `attr pr` or `attr op value` on `resource`; `within` is the multi-valued attribute whose
/// value `resource` is, inside a value filter.
fn attribute(
    expression: &AttrExp,
    resource: &Value,
    within: Option<&AttrPath>,
    case_exact: CaseExact,
) -> bool {
    match expression {
        AttrExp::Present(path) => values(resource, path).iter().any(|value| present(value)),
        AttrExp::Comparison(path, op, expected) => {
            let exact = case_exact(&full_path(within, path));
            let found = values(resource, path);
            match (op, expected) {
                (CompareOp::Eq, CompValue::Null) => !found.iter().any(|value| present(value)),
                (CompareOp::Ne, CompValue::Null) => found.iter().any(|value| present(value)),
                (CompareOp::Ne, _) => !found
                    .iter()
                    .any(|value| compare(value, &CompareOp::Eq, expected, exact)),
                _ => found
                    .iter()
                    .any(|value| compare(value, op, expected, exact)),
            }
        }
    }
}

/// A path inside a value filter, named from the resource: `emails[type eq "work"]` compares
/// `emails.type`.
fn full_path(within: Option<&AttrPath>, path: &AttrPath) -> AttrPath {
    match within {
        Some(outer) => AttrPath {
            uri: outer.uri.clone(),
            name: outer.name.clone(),
            sub_attr: Some(path.name.clone()),
        },
        None => path.clone(),
    }
}

/// The attribute of `object` named `name`, in any case (SCIM's names are case-insensitive).
pub fn named<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The values of the attribute `path` names in `resource` (each value of a multi-valued one),
/// whole.
fn elements<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let Value::Object(object) = resource else {
        return Vec::new();
    };
    // An extension's attributes live under its URI.
    let scope = path
        .uri
        .as_deref()
        .and_then(|uri| named(object, uri))
        .and_then(Value::as_object)
        .unwrap_or(object);
    let Some(attribute) = named(scope, &path.name) else {
        return Vec::new();
    };
    match attribute {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    }
}

/// The values `path` names in `resource`: those of each value of a multi-valued attribute, and
/// the `value` of each complex value when no sub-attribute is named.
fn values<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    elements(resource, path)
        .into_iter()
        .filter_map(|value| match (&path.sub_attr, value) {
            (Some(sub), Value::Object(complex)) => named(complex, sub),
            (Some(_), _) => None,
            (None, Value::Object(complex)) if !complex.is_empty() => {
                named(complex, "value").or(Some(value))
            }
            (None, _) => Some(value),
        })
        .collect()
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(object) => !object.is_empty(),
        _ => true,
    }
}

/// One value against the expected one. Strings take every operator; numbers and booleans the
/// orderings and equality; other pairs never match.
fn compare(value: &Value, op: &CompareOp, expected: &CompValue, exact: bool) -> bool {
    let order = match (value, expected) {
        (Value::String(text), CompValue::Str(wanted)) => {
            let (text, wanted) = if exact {
                (text.clone(), wanted.clone())
            } else {
                (text.to_lowercase(), wanted.to_lowercase())
            };
            match op {
                CompareOp::Co => return text.contains(&wanted),
                CompareOp::Sw => return text.starts_with(&wanted),
                CompareOp::Ew => return text.ends_with(&wanted),
                _ => text.cmp(&wanted),
            }
        }
        (Value::Number(number), CompValue::Number(wanted)) => {
            match (number.as_f64(), wanted.as_f64()) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                _ => return false,
            }
        }
        (Value::Bool(flag), CompValue::True | CompValue::False) => {
            if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return false;
            }
            flag.cmp(&matches!(expected, CompValue::True))
        }
        _ => return false,
    };
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
