//! Queries (RFC 7644 §3.4.2, §3.4.3; cursors, RFC 9865): a filter, a sort, a page (`startIndex`
//! and `count`, or `cursor` and `count`) and the attributes to return, from a query string or a
//! search request's body, answered as a list response.
//!
//! What is read depends on the query: an equality on a unique user attribute reads its holder
//! through the index; a page without filter or sort is read as a page from the store; a cursor
//! walks the store in creation order from where the last page ended, a chunk at a time, until the
//! page is full; anything else (a filter, or a sort) reads every resource and matches them.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as QueryString, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cadre_domain::{ProductType, SubscriptionQuery};
use cadre_scim::{AttrPath, Filter, ScimType, matches, parse_filter, parse_patch_path};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::schema::{GROUP, LIST_SCHEMA, Schema, USER};
use super::{Failure, MAX_RESULTS, ScimCaller, ScimJson, bad, field, groups, scim_json, users};
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
    /// Cursor paging: `Some(None)` for the first page, `Some(Some(id))` after the resource `id`.
    pub cursor: Option<Option<Uuid>>,
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
            "cursor",
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
        let cursor = match text("cursor")? {
            None => None,
            Some(cursor) if cursor.trim().is_empty() => Some(None),
            Some(cursor) => Some(Some(cursor.trim().parse().map_err(|_| {
                bad(
                    ScimType::InvalidCursor,
                    "the cursor is not one this server gave",
                )
            })?)),
        };
        if cursor.is_some() && (sort_by.is_some() || start_index > 1) {
            return Err(bad(
                ScimType::InvalidValue,
                "a cursor walks in creation order: no sortBy and no startIndex with it",
            ));
        }
        Ok(Self {
            filter,
            sort_by,
            descending,
            start_index,
            count,
            cursor,
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

/// The resource types a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SCIM Users: User subscriptions.
    User,
    /// SCIM Groups: UserGroup subscriptions.
    Group,
}

/// Subscriptions read at once while walking or scanning.
const CHUNK: u64 = 500;

impl Kind {
    fn schema(self) -> &'static Schema {
        match self {
            Kind::User => &USER,
            Kind::Group => &GROUP,
        }
    }

    /// The established subscriptions of this kind, in creation order.
    fn subscriptions(self) -> SubscriptionQuery {
        SubscriptionQuery {
            product_type: Some(match self {
                Kind::User => ProductType::user(),
                Kind::Group => ProductType::user_group(),
            }),
            established: true,
            ..SubscriptionQuery::default()
        }
    }

    /// The resources of the subscriptions `ids`, in id order, with what `query` needs.
    async fn render(
        self,
        state: &AppState,
        ids: &[Uuid],
        query: &Query,
    ) -> Result<Vec<Value>, Failure> {
        let product_type = self.subscriptions().product_type;
        let records: Vec<_> = state
            .engine
            .store()
            .load_subscriptions(ids)
            .await?
            .into_iter()
            .filter(|record| Some(&record.product.product_type) == product_type.as_ref())
            .collect();
        match self {
            Kind::User => users::resources(state, records).await,
            Kind::Group => {
                // Members are read only when they are returned or filtered on.
                let filters_members = query.filter.as_ref().is_some_and(|filter| {
                    filter.to_string().to_ascii_lowercase().contains("members")
                });
                let with_members = query.wants("members") || filters_members;
                groups::resources(state, records, with_members).await
            }
        }
    }

    /// One page of the store's subscriptions of this kind: their ids, and the total.
    async fn page(
        self,
        state: &AppState,
        after: Option<Uuid>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Uuid>, u64), Failure> {
        let page = state
            .engine
            .store()
            .list_subscriptions(&SubscriptionQuery {
                after,
                offset,
                limit: Some(limit),
                ..self.subscriptions()
            })
            .await?;
        let ids = page
            .items
            .into_iter()
            .map(|summary| summary.subscription.id)
            .collect();
        Ok((ids, page.total))
    }

    /// Every resource `query` may find, in creation order: the holder of a unique value the
    /// filter names, or every one.
    async fn all(self, state: &AppState, query: &Query) -> Result<Vec<Value>, Failure> {
        let store = state.engine.store();
        if self == Kind::User
            && let Some((resource_type, value)) = query.filter.as_ref().and_then(users::indexed)
        {
            let ids: Vec<Uuid> = store
                .find_by_unique_values(resource_type, &[value])
                .await?
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            return self.render(state, &ids, query).await;
        }
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let (ids, _) = self.page(state, after, 0, CHUNK).await?;
            found.extend(self.render(state, &ids, query).await?);
            match ids.last() {
                Some(last) if ids.len() as u64 == CHUNK => after = Some(*last),
                _ => return Ok(found),
            }
        }
    }

    /// The answer to `query`.
    async fn answer(self, state: &AppState, query: &Query) -> Result<Value, Failure> {
        if let Some(cursor) = query.cursor {
            return self.walk(state, query, cursor).await;
        }
        if query.filter.is_none() && query.sort_by.is_none() {
            let offset = (query.start_index - 1) as u64;
            let (ids, total) = self.page(state, None, offset, query.count as u64).await?;
            let page = self.render(state, &ids, query).await?;
            return Ok(list_response(
                total,
                Some(query.start_index),
                page.into_iter()
                    .map(|resource| query.project(resource))
                    .collect(),
                None,
            ));
        }
        let schema = self.schema();
        let resources = self.all(state, query).await?;
        Ok(query.answer(
            resources
                .into_iter()
                .map(|resource| (resource, schema))
                .collect(),
        ))
    }

    /// A cursor's page: from after `cursor`, a chunk at a time, the resources that match,
    /// until `count` are found; `nextCursor` names the last one when the page is full. The
    /// total is given when there is no filter (the store counts it).
    async fn walk(
        self,
        state: &AppState,
        query: &Query,
        cursor: Option<Uuid>,
    ) -> Result<Value, Failure> {
        if query.count == 0 {
            // The total alone, when the store can count it.
            let total = match query.filter {
                None => Some(self.page(state, None, 0, 0).await?.1),
                Some(_) => None,
            };
            return Ok(list_response_with_cursor(total, Vec::new(), None));
        }
        let schema = self.schema();
        let mut page = Vec::new();
        let mut after = cursor;
        let mut total = None;
        let chunk = if query.filter.is_none() {
            query.count as u64
        } else {
            CHUNK
        };
        let next = loop {
            if page.len() >= query.count {
                break after;
            }
            let (ids, counted) = self.page(state, after, 0, chunk).await?;
            if query.filter.is_none() {
                total = Some(counted);
            }
            let resources = self.render(state, &ids, query).await?;
            let mut full = false;
            for (id, resource) in ids.iter().zip(resources) {
                after = Some(*id);
                let matching = query.filter.as_ref().is_none_or(|filter| {
                    matches(filter, &resource, &|path| schema.case_exact(path))
                });
                if matching {
                    page.push(query.project(resource));
                    if page.len() == query.count {
                        full = true;
                        break;
                    }
                }
            }
            if ids.len() < chunk as usize && !full {
                break None;
            }
        };
        Ok(list_response_with_cursor(total, page, next))
    }
}

/// A list response; `totalResults` when known, `startIndex` for index paging, `nextCursor`
/// for cursor paging.
fn list_response(
    total: u64,
    start_index: Option<usize>,
    page: Vec<Value>,
    next_cursor: Option<Uuid>,
) -> Value {
    let mut response = list_response_with_cursor(Some(total), page, next_cursor);
    if let Some(start_index) = start_index {
        response["startIndex"] = json!(start_index);
    }
    response
}

fn list_response_with_cursor(
    total: Option<u64>,
    page: Vec<Value>,
    next_cursor: Option<Uuid>,
) -> Value {
    let mut response = json!({
        "schemas": [LIST_SCHEMA],
        "itemsPerPage": page.len(),
        "Resources": page,
    });
    if let Some(total) = total {
        response["totalResults"] = json!(total);
    }
    if let Some(next) = next_cursor {
        response["nextCursor"] = json!(next.to_string());
    }
    response
}

async fn respond(state: &AppState, kind: Kind, query: &Query) -> Result<Response, Failure> {
    let answer = kind.answer(state, query).await?;
    Ok((StatusCode::OK, scim_json(&answer)).into_response())
}

/// The query a query string asks for; one that does not parse is a `400`.
pub(super) fn parameters(
    parameters: Result<QueryString<HashMap<String, String>>, QueryRejection>,
) -> Result<Query, Failure> {
    let parameters =
        parameters.map_err(|rejection| bad(ScimType::InvalidValue, rejection.body_text()))?;
    Query::from_parameters(&parameters.0)
}

/// A resource type as a type, for the handlers shared by Users and Groups.
pub trait Typed {
    /// Which one.
    const KIND: Kind;
}

/// SCIM Users.
pub struct Users;

impl Typed for Users {
    const KIND: Kind = Kind::User;
}

/// SCIM Groups.
pub struct Groups;

impl Typed for Groups {
    const KIND: Kind = Kind::Group;
}

/// `GET /scim/v2/Users`, `/Groups`
pub async fn list<T: Typed>(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    query: Result<QueryString<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, Failure> {
    respond(&state, T::KIND, &parameters(query)?).await
}

/// `POST /scim/v2/Users/.search`, `/Groups/.search`
pub async fn search<T: Typed>(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<Response, Failure> {
    let query = Query::from_json(&body)?;
    respond(&state, T::KIND, &query).await
}

/// `POST /scim/v2/.search`: Users and Groups alike, every one read and matched.
pub async fn search_all(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<Response, Failure> {
    let query = Query::from_json(&body)?;
    if query.cursor.is_some() {
        return Err(bad(
            ScimType::InvalidValue,
            "a search across resource types pages by startIndex, not by cursor",
        ));
    }
    let mut resources = Vec::new();
    for kind in [Kind::User, Kind::Group] {
        let schema = kind.schema();
        resources.extend(
            kind.all(&state, &query)
                .await?
                .into_iter()
                .map(|resource| (resource, schema)),
        );
    }
    Ok((StatusCode::OK, scim_json(&query.answer(resources))).into_response())
}
