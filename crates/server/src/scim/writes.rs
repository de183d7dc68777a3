//! Writes: the `POST`, `PUT`, `PATCH` and `DELETE` handlers of Users and Groups, and `/Bulk`
//! (RFC 7644 §3.7), which runs the same writes in order, resolving `bulkId` references to what
//! earlier operations created; a series of user creates goes through one create-only load.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cadre_scim::{ScimError, ScimType};
use serde_json::{Value, json};

use super::listing::{Kind, Typed};
use super::{
    Client, Failure, ScimCaller, ScimJson, Write, bad, groups, resource_response, scim_json, users,
};
use crate::state::AppState;

/// The most operations one bulk request may carry.
pub const MAX_BULK_OPERATIONS: usize = 1000;

/// The largest bulk request read, in bytes.
pub const MAX_BULK_PAYLOAD: usize = 1 << 20;

const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

impl Kind {
    /// Runs `write` on a resource of this kind.
    async fn write(
        self,
        state: &AppState,
        client: &Client,
        write: Write<'_>,
        if_match: Option<&str>,
    ) -> Result<Option<Value>, Failure> {
        match self {
            Kind::User => users::write(state, client, write, if_match).await,
            Kind::Group => groups::write(state, client, write, if_match).await,
        }
    }
}

/// Answers a write: the resource with its status (`201` when created), or `204` once deleted.
async fn respond(
    kind: Kind,
    state: &AppState,
    client: &Client,
    write: Write<'_>,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|value| value.to_str().unwrap_or_default());
    let status = match write {
        Write::Create(_) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok(match kind.write(state, client, write, if_match).await? {
        Some(resource) => resource_response(status, &resource),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `POST /scim/v2/Users`, `/Groups`
pub async fn create<T: Typed>(
    ScimCaller(client): ScimCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, Failure> {
    respond(T::KIND, &state, &client, Write::Create(&body), &headers).await
}

/// `PUT /scim/v2/Users/{id}`, `/Groups/{id}`
pub async fn replace<T: Typed>(
    ScimCaller(client): ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, Failure> {
    respond(
        T::KIND,
        &state,
        &client,
        Write::Replace(&id, &body),
        &headers,
    )
    .await
}

/// `PATCH /scim/v2/Users/{id}`, `/Groups/{id}`
pub async fn patch<T: Typed>(
    ScimCaller(client): ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, Failure> {
    respond(T::KIND, &state, &client, Write::Patch(&id, &body), &headers).await
}

/// `DELETE /scim/v2/Users/{id}`, `/Groups/{id}`
pub async fn delete<T: Typed>(
    ScimCaller(client): ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    respond(T::KIND, &state, &client, Write::Delete(&id), &headers).await
}

/// One operation of a bulk request, read.
struct Operation {
    method: String,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Value>,
}

fn operations(body: &Value) -> Result<(Vec<Operation>, Option<usize>), Failure> {
    let syntax = |detail: &str| bad(ScimType::InvalidSyntax, detail);
    let field = |value: &Value, name: &str| super::field(value, name).cloned();
    let listed = field(body, "Operations")
        .and_then(|operations| operations.as_array().cloned())
        .ok_or_else(|| syntax("a bulk request needs an `Operations` list"))?;
    if listed.len() > MAX_BULK_OPERATIONS {
        return Err(Failure(ScimError {
            status: 413,
            scim_type: None,
            detail: format!("a bulk request carries at most {MAX_BULK_OPERATIONS} operations"),
        }));
    }
    let fail_on_errors = match field(body, "failOnErrors") {
        None => None,
        Some(Value::Number(number)) => number.as_u64().map(|n| n as usize),
        Some(_) => return Err(syntax("failOnErrors is a number")),
    };
    let text =
        |value: &Value, name: &str| field(value, name).and_then(|v| v.as_str().map(str::to_owned));
    let operations = listed
        .iter()
        .map(|operation| {
            Ok(Operation {
                method: text(operation, "method")
                    .ok_or_else(|| syntax("an operation needs a `method`"))?
                    .to_ascii_uppercase(),
                bulk_id: text(operation, "bulkId"),
                version: text(operation, "version"),
                path: text(operation, "path")
                    .ok_or_else(|| syntax("an operation needs a `path`"))?,
                data: field(operation, "data"),
            })
        })
        .collect::<Result<_, Failure>>()?;
    Ok((operations, fail_on_errors))
}

/// `value` with every `bulkId:<id>` string replaced by the id that operation created; the first
/// reference to one not (yet) created is returned instead.
fn resolve(value: &Value, created: &HashMap<String, String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => match text.strip_prefix("bulkId:") {
            Some(bulk_id) => Value::String(
                created
                    .get(bulk_id)
                    .cloned()
                    .ok_or_else(|| bulk_id.to_owned())?,
            ),
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| resolve(item, created))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, item)| Ok((key.clone(), resolve(item, created)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Runs one bulk operation: its status and resource.
async fn run(
    state: &AppState,
    client: &Client,
    operation: &Operation,
    created: &HashMap<String, String>,
) -> Result<(StatusCode, Option<Value>), Failure> {
    let unresolved = |bulk_id: String| {
        Failure(ScimError {
            status: 409,
            scim_type: Some(ScimType::InvalidValue),
            detail: format!("bulkId {bulk_id} names no resource an earlier operation created"),
        })
    };
    let path = operation.path.as_str();
    let data = operation
        .data
        .as_ref()
        .map(|data| resolve(data, created))
        .transpose()
        .map_err(unresolved)?;
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let kind = match segments.next() {
        Some("Users") => Kind::User,
        Some("Groups") => Kind::Group,
        _ => {
            return Err(bad(
                ScimType::InvalidPath,
                format!("{path} is not /Users or /Groups"),
            ));
        }
    };
    let id = segments
        .next()
        .map(|id| resolve(&Value::String(id.to_owned()), created))
        .transpose()
        .map_err(unresolved)?;
    let id = id.as_ref().and_then(Value::as_str);
    let needs_data = || {
        data.as_ref()
            .filter(|data| data.is_object())
            .ok_or_else(|| {
                bad(
                    ScimType::InvalidSyntax,
                    "this operation needs `data`, an object",
                )
            })
    };
    let write = match (operation.method.as_str(), id) {
        ("POST", None) => Write::Create(needs_data()?),
        ("PUT", Some(id)) => Write::Replace(id, needs_data()?),
        ("PATCH", Some(id)) => Write::Patch(id, needs_data()?),
        ("DELETE", Some(id)) => Write::Delete(id),
        _ => {
            return Err(bad(
                ScimType::InvalidSyntax,
                format!(
                    "{} {path} is not an operation of a bulk request",
                    operation.method
                ),
            ));
        }
    };
    let status = match write {
        Write::Create(_) => StatusCode::CREATED,
        Write::Delete(_) => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    };
    let resource = kind
        .write(state, client, write, operation.version.as_deref())
        .await?;
    Ok((status, resource))
}

/// The data of the user creates that `operations` start with (`POST /Users` whose data names
/// only resources created already), `bulkId:` references resolved.
fn user_creates(operations: &[Operation], created: &HashMap<String, String>) -> Vec<Value> {
    operations
        .iter()
        .map_while(|operation| {
            let create =
                operation.method == "POST" && operation.path.trim_start_matches('/') == "Users";
            let data = operation
                .data
                .as_ref()
                .filter(|data| create && data.is_object())?;
            resolve(data, created).ok()
        })
        .collect()
}

/// The answers of a bulk request so far.
#[derive(Default)]
struct Answers {
    /// The ids of the resources created, by `bulkId`.
    created: HashMap<String, String>,
    list: Vec<Value>,
    errors: usize,
}

impl Answers {
    /// Answers `operation` with its `outcome`.
    fn record(
        &mut self,
        operation: &Operation,
        outcome: Result<(StatusCode, Option<Value>), Failure>,
    ) {
        let mut answer = json!({"method": operation.method});
        if let Some(bulk_id) = &operation.bulk_id {
            answer["bulkId"] = json!(bulk_id);
        }
        match outcome {
            Ok((status, resource)) => {
                if let Some(resource) = &resource {
                    if let (Some(bulk_id), Some(id)) = (&operation.bulk_id, resource["id"].as_str())
                    {
                        self.created.insert(bulk_id.clone(), id.to_owned());
                    }
                    answer["location"] = resource["meta"]["location"].clone();
                    answer["version"] = resource["meta"]["version"].clone();
                }
                answer["status"] = json!(status.as_u16().to_string());
            }
            Err(Failure(error)) => {
                self.errors += 1;
                answer["status"] = json!(error.status.to_string());
                answer["response"] = error.body();
            }
        }
        self.list.push(answer);
    }
}

/// `POST /scim/v2/Bulk`: the operations in order, each as its own request would be, except
/// that a series of user creates is checked together and created by one load;
/// `bulkId:` references name what an earlier operation created. After `failOnErrors`
/// failures the rest are not run.
pub async fn bulk(
    ScimCaller(client): ScimCaller,
    State(state): State<AppState>,
    ScimJson(body): ScimJson,
) -> Result<Response, Failure> {
    let (operations, fail_on_errors) = operations(&body)?;
    let stop = |errors: usize| fail_on_errors.is_some_and(|most| errors >= most);
    let mut answers = Answers::default();
    let mut next = 0;
    while next < operations.len() && !stop(answers.errors) {
        let creates = user_creates(&operations[next..], &answers.created);
        if creates.is_empty() {
            let operation = &operations[next];
            let outcome = run(&state, &client, operation, &answers.created).await;
            answers.record(operation, outcome);
            next += 1;
            continue;
        }
        let mut checked = match users::unique_inputs(&state, &creates).await {
            Ok(checked) => checked,
            Err(failure) => creates.iter().map(|_| Err(failure.clone())).collect(),
        };
        // The series ends where `failOnErrors` would stop it.
        let mut errors = answers.errors;
        if let Some(last) = checked.iter().position(|input| {
            errors += usize::from(input.is_err());
            stop(errors)
        }) {
            checked.truncate(last + 1);
        }
        let inputs: Vec<&users::UserInput> = checked
            .iter()
            .filter_map(|input| input.as_ref().ok())
            .collect();
        let mut made = match users::create_many(&state, &client, &inputs).await {
            Ok(made) => made,
            Err(failure) => vec![Err(failure); inputs.len()],
        }
        .into_iter();
        let series = checked.len();
        for (operation, input) in operations[next..].iter().zip(checked) {
            let outcome = input.and_then(|_| {
                made.next()
                    .unwrap_or_else(|| Err(bad(ScimType::InvalidValue, "not created")))
            });
            answers.record(
                operation,
                outcome.map(|resource| (StatusCode::CREATED, Some(resource))),
            );
        }
        next += series;
    }
    let response = json!({"schemas": [BULK_RESPONSE], "Operations": answers.list});
    Ok((StatusCode::OK, scim_json(&response)).into_response())
}
