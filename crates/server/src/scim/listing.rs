//! Queries (RFC 7644 §3.4.2, §3.4.3): a filter, a sort, a page (`startIndex`, `count`) and the
//! attributes to return, from a query string or a search request's body, answered as a list
//! response.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cadre_scim::{AttrPath, Filter, ScimType, matches, parse_filter, parse_patch_path};
use serde_json::{Map, Value, json};

use super::schema::{GROUP, LIST_SCHEMA, Schema, USER};
use super::{Failure, MAX_RESULTS, ScimCaller, bad, body_json, field, groups, scim_json, users};
use crate::state::AppState;

/// What a query asks for.
#[derive(Debug, Default)]
pub struct Query {
    /// Which resources.
    pub filter: Option<Filter>,
    /// The attribute they are sorted by (creation order without one).
    pub sort_by: Option<AttrPath>,
    /// Largest first.
    pub descending: bool,
    /// The 1-based index of the first resource of the page.
    pub start_index: usize,
    /// The most resources of the page.
    pub count: usize,
    /// Only these attributes (with `id`), when given.
    pub attributes: Vec<AttrPath>,
    /// Not these attributes.
    pub excluded: Vec<AttrPath>,
}

impl Query {
    /// The query a query string asks for.
    pub fn from_parameters(parameters: &HashMap<String, String>) -> Result<Self, Failure> {
        let get = |name: &str| {
            parameters
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| Value::String(value.clone()))
        };
        let mut object = Map::new();
        for name in [
            "filter",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
            "attributes",
            "excludedAttributes",
        ] {
            if let Some(value) = get(name) {
                object.insert(name.to_owned(), value);
            }
        }
        Self::from_json(&Value::Object(object))
    }

    /// The query a search request's body (or a query string, as JSON) asks for.
    pub fn from_json(body: &Value) -> Result<Self, Failure> {
        let text = |name: &str| -> Result<Option<String>, Failure> {
            match field(body, name) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(bad(ScimType::InvalidValue, format!("{name} is a string"))),
            }
        };
        let number = |name: &str| -> Result<Option<i64>, Failure> {
            match field(body, name) {
                None => Ok(None),
                Some(Value::Number(number)) => Ok(number.as_i64()),
                Some(Value::String(text)) => text
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| bad(ScimType::InvalidValue, format!("{name} is an integer"))),
                Some(_) => Err(bad(ScimType::InvalidValue, format!("{name} is an integer"))),
            }
        };
        let paths = |value: Option<&Value>| -> Result<Vec<AttrPath>, Failure> {
            let names: Vec<String> = match value {
                None => Vec::new(),
                Some(Value::String(list)) => list.split(',').map(str::to_owned).collect(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                Some(_) => return Err(bad(ScimType::InvalidValue, "attributes are a list")),
            };
            names
                .iter()
                .map(|name| name.trim())
                .filter(|name| !name.is_empty())
                .map(attribute_path)
                .collect()
        };
        let filter = text("filter")?
            .filter(|filter| !filter.trim().is_empty())
            .map(|filter| parse_filter(&filter))
            .transpose()?;
        let sort_by = text("sortBy")?
            .filter(|name| !name.trim().is_empty())
            .map(|name| attribute_path(name.trim()))
            .transpose()?;
        let descending = match text("sortOrder")?.as_deref() {
            None => false,
            Some(order) if order.eq_ignore_ascii_case("ascending") => false,
            Some(order) if order.eq_ignore_ascii_case("descending") => true,
            Some(_) => {
                return Err(bad(
                    ScimType::InvalidValue,
                    "sortOrder is ascending or descending",
                ));
            }
        };
        // RFC 7644 §3.4.2.4: a start index below 1 is 1, a negative count is 0.
        let start_index = number("startIndex")?.unwrap_or(1).max(1) as usize;
        let count = number("count")?
            .map_or(100, |count| count.max(0) as usize)
            .min(MAX_RESULTS);
        Ok(Self {
            filter,
            sort_by,
            descending,
            start_index,
            count,
            attributes: paths(field(body, "attributes"))?,
            excluded: paths(field(body, "excludedAttributes"))?,
        })
    }

    /// Whether the attribute `name` (top level) is to be returned.
    pub fn wants(&self, name: &str) -> bool {
        let named = |paths: &[AttrPath]| {
            paths
                .iter()
                .any(|path| path.name.eq_ignore_ascii_case(name))
        };
        (self.attributes.is_empty() || named(&self.attributes))
            && !self
                .excluded
                .iter()
                .any(|path| path.name.eq_ignore_ascii_case(name) && path.sub_attr.is_none())
    }

    /// The list response for `resources` (every candidate, in creation order): those the
    /// filter matches, sorted, one page of them, with the asked-for attributes.
    pub fn answer(&self, resources: Vec<(Value, &Schema)>) -> Value {
        let mut found: Vec<(Value, &Schema)> = resources
            .into_iter()
            .filter(|(resource, schema)| {
                self.filter
                    .as_ref()
                    .is_none_or(|filter| matches(filter, resource, &|path| schema.case_exact(path)))
            })
            .collect();
        if let Some(path) = &self.sort_by {
            // Stable: resources with equal keys keep creation order.
            found.sort_by(|(left, schema), (right, _)| {
                let order = compare(sort_key(left, path, schema), sort_key(right, path, schema));
                if self.descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        let total = found.len();
        let page: Vec<Value> = found
            .into_iter()
            .skip(self.start_index - 1)
            .take(self.count)
            .map(|(resource, _)| self.project(resource))
            .collect();
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": self.start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        })
    }

    /// `resource` with the asked-for attributes only: `attributes` keeps `id`, `schemas` and
    /// what it names; `excludedAttributes` drops what it names but `id`. A password is never
    /// there to be returned.
    pub fn project(&self, resource: Value) -> Value {
        let Value::Object(mut object) = resource else {
            return resource;
        };
        if !self.attributes.is_empty() {
            object.retain(|key, value| {
                if key == "id" || key == "schemas" {
                    return true;
                }
                let named: Vec<&AttrPath> = self
                    .attributes
                    .iter()
                    .filter(|path| path.name.eq_ignore_ascii_case(key))
                    .collect();
                if named.is_empty() {
                    return false;
                }
                if named.iter().all(|path| path.sub_attr.is_some())
                    && let Value::Object(inner) = value
                {
                    inner.retain(|sub, _| {
                        named.iter().any(|path| {
                            path.sub_attr
                                .as_deref()
                                .is_some_and(|wanted| wanted.eq_ignore_ascii_case(sub))
                        })
                    });
                }
                true
            });
        }
        for path in &self.excluded {
            if path.name.eq_ignore_ascii_case("id") {
                continue;
            }
            let key = object
                .keys()
                .find(|key| key.eq_ignore_ascii_case(&path.name))
                .cloned();
            let Some(key) = key else { continue };
            match &path.sub_attr {
                None => {
                    object.remove(&key);
                }
                Some(sub) => {
                    if let Some(Value::Object(inner)) = object.get_mut(&key) {
                        inner.retain(|name, _| !name.eq_ignore_ascii_case(sub));
                    }
                }
            }
        }
        Value::Object(object)
    }
}

/// An attribute named in `attributes`, `excludedAttributes` or `sortBy`.
fn attribute_path(name: &str) -> Result<AttrPath, Failure> {
    match parse_patch_path(name)? {
        cadre_scim::PatchPath::Attr(path) => Ok(path),
        cadre_scim::PatchPath::Value(_) => Err(bad(
            ScimType::InvalidPath,
            format!("{name} names an attribute, without a filter"),
        )),
    }
}

/// The value a resource is sorted by: the first value the path names (without case where the
/// attribute compares without it).
fn sort_key(resource: &Value, path: &AttrPath, schema: &Schema) -> Option<Value> {
    let scope = match &path.uri {
        Some(uri) => field(resource, uri)?,
        None => resource,
    };
    let mut value = field(scope, &path.name)?;
    if let Value::Array(items) = value {
        // A multi-valued attribute sorts by its primary value, else its first.
        value = items
            .iter()
            .find(|item| item["primary"] == json!(true))
            .or_else(|| items.first())?;
    }
    let value = match (&path.sub_attr, value) {
        (Some(sub), complex) => field(complex, sub)?,
        (None, Value::Object(_)) => field(value, "value")?,
        (None, simple) => simple,
    };
    Some(match value {
        Value::String(text) if !schema.case_exact(path) => Value::String(text.to_lowercase()),
        other => other.clone(),
    })
}

/// Orders sort keys: missing last, then strings, numbers and booleans among their kind.
fn compare(left: Option<Value>, right: Option<Value>) -> Ordering {
    match (left, right) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(Value::String(left)), Some(Value::String(right))) => left.cmp(&right),
        (Some(Value::Number(left)), Some(Value::Number(right))) => left
            .as_f64()
            .unwrap_or_default()
            .total_cmp(&right.as_f64().unwrap_or_default()),
        (Some(Value::Bool(left)), Some(Value::Bool(right))) => left.cmp(&right),
        (Some(left), Some(right)) => left.to_string().cmp(&right.to_string()),
    }
}

/// `POST /scim/v2/.search`: Users and Groups alike.
pub async fn search_all(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let query = Query::from_json(&body_json(&headers, &body)?)?;
    let mut resources: Vec<(Value, &Schema)> = users::all(&state, &query)
        .await?
        .into_iter()
        .map(|user| (user, &USER))
        .collect();
    resources.extend(
        groups::all(&state, &query)
            .await?
            .into_iter()
            .map(|group| (group, &GROUP)),
    );
    Ok((StatusCode::OK, scim_json(&query.answer(resources))).into_response())
}
