//! PATCH (RFC 7644 §3.5.2) applied to a resource as SCIM JSON: `add`, `replace` and `remove`
//! in any case, with a `path` (an attribute, a sub-attribute, a value path such as
//! `emails[type eq "work"].value`, under an extension's URI or not) or without one (a value
//! object whose keys may be dotted paths or extension URIs). The caller turns the patched
//! resource into its own change, as it would a replacement (PUT).

use serde_json::{Map, Value};

use crate::matching::{named, value_matches};
use crate::{
    AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ScimError, ScimType, ValFilter,
    parse_patch_path,
};

/// The URI of SCIM's PATCH request schema.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The most operations one PATCH request may carry, and the most values all its operations
/// may carry together (an operation's list counts each of its values): adding values compares
/// each with those there, so the work stays bounded.
pub const MAX_OPERATIONS: usize = 1000;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// Adds values: appended to a multi-valued attribute, merged into a complex one, set on a
    /// single-valued one.
    Add,
    /// Replaces values: a multi-valued attribute's whole list, a complex one's given
    /// sub-attributes, a single-valued one.
    Replace,
    /// Removes the values the path names (or, with a list value, the listed ones).
    Remove,
}

/// One operation of a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// What it does.
    pub kind: PatchKind,
    /// Where; `None` for a value object naming its attributes.
    pub path: Option<PatchPath>,
    /// The value, if any.
    pub value: Option<Value>,
}

/// What the schema says of the attributes a PATCH touches.
#[derive(Debug, Clone, Copy)]
pub struct Attributes {
    /// Whether an attribute's strings compare with case.
    pub case_exact: fn(&AttrPath) -> bool,
    /// Whether an attribute is multi-valued.
    pub multi_valued: fn(&AttrPath) -> bool,
    /// The URIs of the schema extensions the resource may carry.
    pub extensions: &'static [&'static str],
}

/// Reads a PATCH request body: `Operations`, each with an `op` in any case, a `path` that
/// parses, and a value where the operation needs one.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    let syntax = |detail: &str| ScimError::bad_request(ScimType::InvalidSyntax, detail);
    let operations = body
        .as_object()
        .and_then(|object| named(object, "Operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("a PATCH request needs an `Operations` list"))?;
    let values: usize = operations
        .iter()
        .map(|operation| {
            match operation
                .as_object()
                .and_then(|object| named(object, "value"))
            {
                Some(Value::Array(items)) => items.len(),
                _ => 1,
            }
        })
        .sum();
    if operations.len() > MAX_OPERATIONS || values > MAX_OPERATIONS {
        return Err(ScimError::bad_request(
            ScimType::TooMany,
            format!("a PATCH request carries at most {MAX_OPERATIONS} operations and values"),
        ));
    }
    operations
        .iter()
        .map(|operation| {
            let object = operation
                .as_object()
                .ok_or_else(|| syntax("an operation is an object"))?;
            let kind = match named(object, "op").and_then(Value::as_str) {
                Some(op) if op.eq_ignore_ascii_case("add") => PatchKind::Add,
                Some(op) if op.eq_ignore_ascii_case("replace") => PatchKind::Replace,
                Some(op) if op.eq_ignore_ascii_case("remove") => PatchKind::Remove,
                _ => return Err(syntax("`op` is one of add, replace, remove")),
            };
            let path = match named(object, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) if path.is_empty() => None,
                Some(Value::String(path)) => Some(parse_patch_path(path)?),
                Some(_) => return Err(syntax("`path` is a string")),
            };
            let value = named(object, "value")
                .filter(|value| !value.is_null())
                .cloned();
            match (kind, &path, &value) {
                (PatchKind::Remove, None, _) => Err(ScimError::bad_request(
                    ScimType::NoTarget,
                    "a remove operation needs a `path`",
                )),
                (PatchKind::Add | PatchKind::Replace, _, None) => Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    "an add or replace operation needs a `value`",
                )),
                (PatchKind::Add | PatchKind::Replace, None, Some(value)) if !value.is_object() => {
                    Err(ScimError::bad_request(
                        ScimType::InvalidValue,
                        "without a `path`, the `value` is an object of attributes",
                    ))
                }
                _ => Ok(PatchOperation { kind, path, value }),
            }
        })
        .collect()
}

/// Applies `operations` in order to `resource`.
pub fn apply_patch(
    resource: &mut Map<String, Value>,
    operations: &[PatchOperation],
    attributes: &Attributes,
) -> Result<(), ScimError> {
    for operation in operations {
        let extension = operation
            .path
            .as_ref()
            .and_then(|path| whole_extension(path, attributes));
        match (extension, &operation.path, &operation.value) {
            (Some(uri), _, _) if operation.kind == PatchKind::Remove => {
                resource.retain(|key, _| !key.eq_ignore_ascii_case(uri));
            }
            (Some(uri), _, Some(value @ Value::Object(_))) => {
                apply_key(resource, operation.kind, uri, value, attributes)?;
            }
            (Some(uri), _, _) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!("the value at {uri} is an object of its attributes"),
                ));
            }
            (None, Some(path), value) => {
                apply_at(resource, operation.kind, path, value, attributes)?;
            }
            (None, None, Some(Value::Object(values))) => {
                for (key, value) in values {
                    apply_key(resource, operation.kind, key, value, attributes)?;
                }
            }
            (None, None, _) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    "without a `path`, the `value` is an object of attributes",
                ));
            }
        }
    }
    Ok(())
}

/// The extension a path names whole (`urn:…:enterprise:2.0:User`, which reads as the attribute
/// `User` of the URI before it), if it names one.
fn whole_extension(path: &PatchPath, attributes: &Attributes) -> Option<&'static str> {
    let PatchPath::Attr(AttrPath {
        uri: Some(uri),
        name,
        sub_attr: None,
    }) = path
    else {
        return None;
    };
    attributes.extensions.iter().copied().find(|extension| {
        extension.len() == uri.len() + 1 + name.len()
            && extension.eq_ignore_ascii_case(&format!("{uri}:{name}"))
    })
}

/// One key of a path-less operation's value: an extension's URI (its attributes inside), or a
/// path of its own (`name.givenName`, `urn:…:User:employeeNumber`).
fn apply_key(
    resource: &mut Map<String, Value>,
    kind: PatchKind,
    key: &str,
    value: &Value,
    attributes: &Attributes,
) -> Result<(), ScimError> {
    if let Some(uri) = attributes
        .extensions
        .iter()
        .find(|uri| uri.eq_ignore_ascii_case(key))
        && let Value::Object(inner) = value
    {
        for (name, value) in inner {
            let path = AttrPath {
                uri: Some((*uri).to_owned()),
                name: name.clone(),
                sub_attr: None,
            };
            apply_at(
                resource,
                kind,
                &PatchPath::Attr(path),
                &Some(value.clone()),
                attributes,
            )?;
        }
        return Ok(());
    }
    let path = parse_patch_path(key)?;
    apply_at(resource, kind, &path, &Some(value.clone()), attributes)
}

fn apply_at(
    resource: &mut Map<String, Value>,
    kind: PatchKind,
    path: &PatchPath,
    value: &Option<Value>,
    attributes: &Attributes,
) -> Result<(), ScimError> {
    match path {
        PatchPath::Attr(path) => {
            let multi = (attributes.multi_valued)(&AttrPath {
                sub_attr: None,
                ..path.clone()
            });
            let Some(scope) = scope(resource, path.uri.as_deref(), kind != PatchKind::Remove)
            else {
                return Ok(());
            };
            match &path.sub_attr {
                None => set(scope, &path.name, kind, value, multi),
                Some(sub) => {
                    if multi {
                        // `emails.type`: every value's sub-attribute.
                        if let Some(Value::Array(items)) = field_mut(scope, &path.name) {
                            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                                set(item, sub, kind, value, false);
                            }
                        }
                        return Ok(());
                    }
                    let key = key_of(scope, &path.name);
                    if kind == PatchKind::Remove
                        && !matches!(scope.get(&key), Some(Value::Object(_)))
                    {
                        return Ok(());
                    }
                    let parent = scope
                        .entry(key)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !parent.is_object() {
                        *parent = Value::Object(Map::new());
                    }
                    if let Value::Object(parent) = parent {
                        set(parent, sub, kind, value, false);
                    }
                }
            }
            Ok(())
        }
        PatchPath::Value(path) => {
            let Some(scope) = scope(
                resource,
                path.attr.uri.as_deref(),
                kind != PatchKind::Remove,
            ) else {
                return Ok(());
            };
            if named(scope, &path.attr.name).is_none() {
                if kind == PatchKind::Remove {
                    return Ok(());
                }
                insert(scope, &path.attr.name, Value::Array(Vec::new()));
            }
            let Some(Value::Array(items)) = field_mut(scope, &path.attr.name) else {
                return Err(ScimError::bad_request(
                    ScimType::InvalidPath,
                    format!("{} is not multi-valued", path.attr.name),
                ));
            };
            let chosen = |item: &Value| {
                value_matches(&path.filter, item, &path.attr, &attributes.case_exact)
            };
            match (kind, &path.sub_attr) {
                (PatchKind::Remove, None) => items.retain(|item| !chosen(item)),
                (PatchKind::Remove, Some(sub)) => {
                    for item in items.iter_mut().filter(|item| chosen(item)) {
                        if let Value::Object(item) = item {
                            set(item, sub, kind, value, false);
                        }
                    }
                }
                (_, sub) => {
                    let mut found = false;
                    for item in items.iter_mut().filter(|item| chosen(item)) {
                        found = true;
                        if let Value::Object(item) = item {
                            write_element(item, sub.as_deref(), value);
                        }
                    }
                    if !found {
                        // The value the filter names does not exist yet: made from the
                        // filter's equalities (`emails[type eq "work"].value` makes a work
                        // address).
                        let mut item = element_of(&path.filter).ok_or_else(|| {
                            ScimError::bad_request(
                                ScimType::NoTarget,
                                format!("no value of {} matches the filter", path.attr.name),
                            )
                        })?;
                        write_element(&mut item, sub.as_deref(), value);
                        items.push(Value::Object(item));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Writes `value` into one value of a multi-valued attribute: its sub-attribute `sub`, or the
/// sub-attributes of `value` when no sub-attribute is named.
fn write_element(item: &mut Map<String, Value>, sub: Option<&str>, value: &Option<Value>) {
    match (sub, value) {
        (Some(sub), Some(value)) => insert(item, sub, value.clone()),
        (None, Some(Value::Object(values))) => {
            for (key, value) in values {
                insert(item, key, value.clone());
            }
        }
        _ => {}
    }
}

/// A new value of a multi-valued attribute holding the equalities `filter` asks for, if it
/// asks for nothing else.
fn element_of(filter: &ValFilter) -> Option<Map<String, Value>> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value)) => {
            let value = match value {
                CompValue::Str(text) => Value::String(text.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(number) => Value::Number(number.clone()),
                CompValue::Null => return None,
            };
            Some(Map::from_iter([(path.name.clone(), value)]))
        }
        ValFilter::And(left, right) => {
            let mut item = element_of(left)?;
            item.extend(element_of(right)?);
            Some(item)
        }
        _ => None,
    }
}

/// The object an attribute lives in: the resource, or the extension `uri` names (made when
/// `create` and missing).
fn scope<'a>(
    resource: &'a mut Map<String, Value>,
    uri: Option<&str>,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    let Some(uri) = uri else {
        return Some(resource);
    };
    let key = key_of(resource, uri);
    if !create && !resource.contains_key(&key) {
        return None;
    }
    resource
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// One attribute of `object`, `name` in any case.
fn set(
    object: &mut Map<String, Value>,
    name: &str,
    kind: PatchKind,
    value: &Option<Value>,
    multi_valued: bool,
) {
    let current = field_mut(object, name);
    match (kind, value) {
        (PatchKind::Remove, Some(Value::Array(removed))) if multi_valued => {
            if let Some(Value::Array(items)) = current {
                items.retain(|item| !removed.iter().any(|gone| same_value(item, gone)));
            }
        }
        (PatchKind::Remove, _) => {
            remove(object, name);
        }
        (_, None) => {}
        (kind, Some(value)) => {
            let value = if multi_valued && !value.is_array() {
                Value::Array(vec![value.clone()])
            } else {
                value.clone()
            };
            match (kind, current, value) {
                (PatchKind::Add, Some(Value::Array(items)), Value::Array(added)) => {
                    for item in added {
                        if !items.iter().any(|existing| same_value(existing, &item)) {
                            items.push(item);
                        }
                    }
                }
                (_, Some(Value::Object(existing)), Value::Object(given)) => {
                    for (key, value) in given {
                        insert(existing, &key, value);
                    }
                }
                (_, _, value) => insert(object, name, value),
            }
        }
    }
}

/// Whether two values of a multi-valued attribute are the same one: equal, or complex with
/// equal `value`s.
fn same_value(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Object(left), Value::Object(right)) => {
            match (named(left, "value"), named(right, "value")) {
                (Some(left), Some(right)) => left == right,
                _ => left == right,
            }
        }
        _ => left == right,
    }
}

/// The key of `object` named `name` in any case, or `name` itself when there is none.
fn key_of(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn field_mut<'a>(object: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_of(object, name);
    object.get_mut(&key)
}

fn insert(object: &mut Map<String, Value>, name: &str, value: Value) {
    let key = key_of(object, name);
    object.insert(key, value);
}

fn remove(object: &mut Map<String, Value>, name: &str) {
    let key = key_of(object, name);
    object.remove(&key);
}
