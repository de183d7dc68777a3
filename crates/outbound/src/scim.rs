//! A SCIM 2.0 service provider as a target (RFC 7643/7644).
//!
//! Users and groups are written whole (`POST`, `PUT`) and found again by an equality filter
//! on the attribute that takes cadre's `user_id` (users) or on `externalId` (groups). A
//! mapped attribute name is a SCIM attribute path: `emails` and `phoneNumbers` become the
//! primary value of that multi-valued attribute, a dotted path `a.b` a sub-attribute, and any
//! other name a plain attribute of the core User schema.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::connector::{
    Connector, ConnectorError, GroupEntry, REQUEST_TIMEOUT, Remote, UserEntry, create_each,
};
use crate::listing::{Listed, Listing, Remembered};

/// The core User schema (RFC 7643 §4.1).
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema (RFC 7643 §4.2).
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The schema of a bulk request (RFC 7644 §3.7).
const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The media type of SCIM bodies (RFC 7644 §8.1).
const SCIM_MEDIA_TYPE: &str = "application/scim+json";
/// What cadre reads in an answer.
const ACCEPTED_MEDIA_TYPES: &str = "application/scim+json, application/json";
/// Multi-valued attributes a mapped value becomes the primary `work` value of.
const MULTI_VALUED: &[&str] = &["emails", "phoneNumbers"];
/// Resources asked for per page of a listing.
const PAGE_SIZE: usize = 500;
/// The most operations in one `/Bulk` request, whatever the target announces.
const MAX_BULK_OPERATIONS: usize = 1000;
/// The largest answer cadre reads, so that a confused target cannot exhaust its memory.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// The most characters of a target's error detail quoted in an error.
const MAX_DETAIL_CHARS: usize = 200;

/// How to reach a SCIM target.
#[derive(Clone)]
pub struct ScimSettings {
    /// The base URL, without a trailing `/`.
    pub base_url: String,
    /// Basic authentication as this user; `None`: the secret is a bearer token.
    pub username: Option<String>,
    /// The bearer token or the basic-auth password.
    pub secret: String,
    /// Whether the target takes `/Bulk`.
    pub bulk: bool,
    /// The SCIM attribute that takes cadre's `user_id` (`externalId` by default).
    pub id_attribute: String,
    /// The attributes the target's mapping names: what [`Connector::list_users`] reads back.
    pub attributes: Vec<String>,
}

impl fmt::Debug for ScimSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimSettings")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("secret", &"…")
            .field("bulk", &self.bulk)
            .field("id_attribute", &self.id_attribute)
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// Speaks SCIM to one target.
#[derive(Debug)]
pub struct ScimConnector {
    settings: ScimSettings,
    base: Url,
    client: reqwest::Client,
    /// The last listing of users, to ask only for what changed since.
    users: Remembered<UserEntry>,
    /// The last listing of groups, likewise.
    groups: Remembered<GroupEntry>,
    /// See [`ScimConnector::full_listings`].
    full_listings: AtomicU64,
}

/// An answer of the target: its status and its JSON body, if it had one.
struct Answer {
    status: StatusCode,
    body: Option<Value>,
}

impl ScimConnector {
    /// A connector for `settings`; refused when the base URL is not an `http(s)` URL.
    pub fn new(settings: ScimSettings) -> Result<Self, ConnectorError> {
        let base = Url::parse(settings.base_url.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base())
            .ok_or_else(|| {
                ConnectorError::Refused(format!(
                    "the base URL {:?} is not an http(s) URL",
                    settings.base_url
                ))
            })?;
        use_ring_for_tls();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cadre/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ConnectorError::Refused(format!("no HTTP client: {}", error_chain(&error)))
            })?;
        Ok(Self {
            settings,
            base,
            client,
            users: Remembered::default(),
            groups: Remembered::default(),
            full_listings: AtomicU64::new(0),
        })
    }

    /// The URL of the base URL's `segments` (each one percent-encoded as a path segment).
    fn url(&self, segments: &[&str]) -> Result<Url, ConnectorError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ConnectorError::Refused(format!("{} cannot take a path", self.base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends `body` (if any) to `url` with `method`; what the target answered, whatever its
    /// status. Unavailable when the target cannot be reached or does not answer in time.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, ConnectorError> {
        let mut request = self
            .client
            .request(method, url)
            .header(ACCEPT, HeaderValue::from_static(ACCEPTED_MEDIA_TYPES));
        request = match &self.settings.username {
            Some(username) => request.basic_auth(username, Some(&self.settings.secret)),
            None => request.bearer_auth(&self.settings.secret),
        };
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|error| {
                ConnectorError::Protocol(format!("the request cannot be written: {error}"))
            })?;
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static(SCIM_MEDIA_TYPE))
                .body(bytes);
        }
        let mut response = request.send().await.map_err(|error| {
            if error.is_builder() {
                ConnectorError::Refused(error_chain(&error))
            } else {
                ConnectorError::Unavailable(error_chain(&error))
            }
        })?;
        let status = response.status();
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_none_or(is_json_media_type);
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| ConnectorError::Unavailable(error_chain(&error)))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ConnectorError::Protocol(format!(
                    "the answer is larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else if !json {
            if status.is_success() {
                return Err(ConnectorError::Protocol(format!(
                    "the target answered {status} with a body that is not JSON"
                )));
            }
            None
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(value) => Some(value),
                Err(error) if status.is_success() => {
                    return Err(ConnectorError::Protocol(format!(
                        "the target answered {status} with malformed JSON: {error}"
                    )));
                }
                Err(_) => None,
            }
        };
        Ok(Answer { status, body })
    }

    /// The body of a successful answer to `method` on `url`; the target's refusal otherwise.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, ConnectorError> {
        let answer = self.exchange(method, url, body).await?;
        if !answer.status.is_success() {
            return Err(failure(answer.status, answer.body.as_ref()));
        }
        answer.body.ok_or_else(|| {
            ConnectorError::Protocol(format!(
                "the target answered {} without a body",
                answer.status
            ))
        })
    }

    /// The remote id of the one resource of `endpoint` whose `attribute` equals `value`.
    async fn find(
        &self,
        endpoint: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let mut url = self.url(&[endpoint])?;
        url.query_pairs_mut()
            .append_pair("filter", &equality_filter(attribute, value));
        let list = self.call(Method::GET, url, None).await?;
        let total = total_results(&list)?;
        let resources = resources(&list)?;
        let found = total.max(u64::try_from(resources.len()).unwrap_or(u64::MAX));
        if found > 1 {
            return Err(ConnectorError::Refused(format!(
                "{found} {endpoint} have {attribute} {value:?}: which one is cadre's is ambiguous"
            )));
        }
        resources.first().map(resource_id).transpose()
    }

    /// Every resource of `endpoint` that `filter` (if any) selects, read page by page.
    async fn list(
        &self,
        endpoint: &str,
        filter: Option<&str>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut all = Vec::new();
        loop {
            let mut url = self.url(&[endpoint])?;
            if let Some(filter) = filter {
                url.query_pairs_mut().append_pair("filter", filter);
            }
            url.query_pairs_mut()
                .append_pair("startIndex", &(all.len() + 1).to_string())
                .append_pair("count", &PAGE_SIZE.to_string());
            let page = self.call(Method::GET, url, None).await?;
            let total = total_results(&page)?;
            let resources = resources(&page)?;
            if resources.is_empty() {
                return Ok(all);
            }
            all.extend(resources.iter().cloned());
            if u64::try_from(all.len()).is_ok_and(|read| read >= total) {
                return Ok(all);
            }
        }
    }

    /// How many resources `endpoint` has.
    async fn count(&self, endpoint: &str) -> Result<u64, ConnectorError> {
        let mut url = self.url(&[endpoint])?;
        url.query_pairs_mut().append_pair("count", "0");
        total_results(&self.call(Method::GET, url, None).await?)
    }

    /// Every resource of `endpoint` that is cadre's, as `read` reads it: only what changed
    /// since the `remembered` listing when the target allows, in full otherwise (see
    /// [`crate::listing`]); and whether it was listed in full.
    async fn listing<T: Clone>(
        &self,
        endpoint: &str,
        remembered: &Remembered<T>,
        read: impl Fn(&Value) -> Result<Option<Remote<T>>, ConnectorError>,
    ) -> Result<(Vec<Remote<T>>, bool), ConnectorError> {
        let read_all = |resources: Vec<Value>| -> Result<Vec<Listed<T>>, ConnectorError> {
            resources
                .iter()
                .map(|resource| {
                    Ok(Listed {
                        id: resource_id(resource)?,
                        modified: last_modified(resource),
                        entry: read(resource)?.map(|remote| remote.entry),
                    })
                })
                .collect()
        };
        let (known, ticket) = remembered.take();
        let updated = match known.as_ref().and_then(Listing::since) {
            Some(since) => {
                let filter = format!(
                    "meta.lastModified ge \"{}\"",
                    since.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                );
                match self.list(endpoint, Some(&filter)).await {
                    Ok(changed) => {
                        let changed = read_all(changed)?;
                        match self.count(endpoint).await {
                            Ok(total) => known.and_then(|known| known.update(changed, total)),
                            Err(error @ ConnectorError::Unavailable(_)) => return Err(error),
                            // A target that does not count is listed in full.
                            Err(_) => None,
                        }
                    }
                    Err(error @ ConnectorError::Unavailable(_)) => return Err(error),
                    // A target that does not filter by modification time is listed in full.
                    Err(_) => None,
                }
            }
            None => None,
        };
        let (listing, in_full) = match updated {
            Some(listing) => (listing, false),
            None => {
                self.full_listings.fetch_add(1, Ordering::Relaxed);
                (
                    Listing::full(read_all(self.list(endpoint, None).await?)?),
                    true,
                )
            }
        };
        let remotes = listing.remotes();
        remembered.put(listing, ticket);
        Ok((remotes, in_full))
    }

    /// How many times this connector has listed users or groups in full rather than asking
    /// for what changed since its last listing: for monitoring and tests.
    pub fn full_listings(&self) -> u64 {
        self.full_listings.load(Ordering::Relaxed)
    }

    /// Replaces the resource `id` of `endpoint` with `resource`; its remote id. Refused with
    /// "not found" when the target no longer has it.
    async fn replace(
        &self,
        endpoint: &str,
        id: &str,
        resource: &Value,
    ) -> Result<String, ConnectorError> {
        let answer = self
            .exchange(Method::PUT, self.url(&[endpoint, id])?, Some(resource))
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Err(ConnectorError::Refused(format!(
                "{endpoint}/{id} not found: the target no longer has it"
            ))),
            status if status.is_success() => match answer.body {
                Some(body) => resource_id(&body),
                None => Ok(id.to_owned()),
            },
            status => Err(failure(status, answer.body.as_ref())),
        }
    }

    /// Deletes the resource `id` of `endpoint`; one already gone is no error.
    async fn delete(&self, endpoint: &str, id: &str) -> Result<(), ConnectorError> {
        let answer = self
            .exchange(Method::DELETE, self.url(&[endpoint, id])?, None)
            .await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(()),
            status if status.is_success() => Ok(()),
            status => Err(failure(status, answer.body.as_ref())),
        }
    }

    /// The most operations a `/Bulk` request may hold: the target's `maxOperations`, at most
    /// [`MAX_BULK_OPERATIONS`]; that bound when the target does not say.
    async fn bulk_size(&self) -> Result<usize, ConnectorError> {
        let url = self.url(&["ServiceProviderConfig"])?;
        let announced = match self.call(Method::GET, url, None).await {
            Ok(config) => config
                .pointer("/bulk/maxOperations")
                .and_then(Value::as_u64)
                .and_then(|max| usize::try_from(max).ok())
                .filter(|max| *max > 0),
            Err(error @ ConnectorError::Unavailable(_)) => return Err(error),
            Err(_) => None,
        };
        Ok(announced.map_or(MAX_BULK_OPERATIONS, |max| max.min(MAX_BULK_OPERATIONS)))
    }

    /// Creates `users` with one `/Bulk` request; each one's remote id or why it failed.
    async fn bulk_create(
        &self,
        users: &[UserEntry],
    ) -> Result<Vec<Result<String, ConnectorError>>, ConnectorError> {
        let operations: Vec<Value> = users
            .iter()
            .enumerate()
            .map(|(index, user)| {
                json!({
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": index.to_string(),
                    "data": self.user_resource(user, None),
                })
            })
            .collect();
        let request = json!({ "schemas": [BULK_REQUEST_SCHEMA], "Operations": operations });
        let answer = self
            .call(Method::POST, self.url(&["Bulk"])?, Some(&request))
            .await?;
        let mut outcomes: Vec<Option<Result<String, ConnectorError>>> =
            (0..users.len()).map(|_| None).collect();
        let answered = answer
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ConnectorError::Protocol("a bulk answer without Operations".to_owned())
            })?;
        for operation in answered {
            let Some(slot) = operation
                .get("bulkId")
                .and_then(Value::as_str)
                .and_then(|bulk_id| bulk_id.parse::<usize>().ok())
                .and_then(|index| outcomes.get_mut(index))
            else {
                continue;
            };
            *slot = Some(bulk_outcome(operation));
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Err(ConnectorError::Protocol(
                        "the bulk answer does not say what became of this user".to_owned(),
                    ))
                })
            })
            .collect())
    }

    /// `user` as a SCIM User resource, with `id` when it replaces one.
    fn user_resource(&self, user: &UserEntry, id: Option<&str>) -> Value {
        let mut resource = Map::new();
        resource.insert("schemas".to_owned(), json!([USER_SCHEMA]));
        if let Some(id) = id {
            resource.insert("id".to_owned(), json!(id));
        }
        for (attribute, value) in &user.attributes {
            insert_attribute(&mut resource, attribute, value);
        }
        let id_attribute = &self.settings.id_attribute;
        if !user.attributes.contains_key(id_attribute) {
            insert_attribute(&mut resource, id_attribute, &user.external_id);
        }
        if !user
            .attributes
            .keys()
            .any(|attribute| attribute.eq_ignore_ascii_case("userName"))
        {
            insert_attribute(&mut resource, "userName", &user.external_id);
        }
        resource.insert("active".to_owned(), json!(user.active));
        Value::Object(resource)
    }

    /// The user `resource` holds, as far as the mapping reads; `None` when it has no value
    /// for the id attribute (cadre did not make it).
    fn user_entry(&self, resource: &Value) -> Result<Option<Remote<UserEntry>>, ConnectorError> {
        let id = resource_id(resource)?;
        let id_attribute = &self.settings.id_attribute;
        let Some(external_id) = read_attribute(resource, id_attribute) else {
            return Ok(None);
        };
        let attributes = self
            .settings
            .attributes
            .iter()
            .chain(std::iter::once(id_attribute))
            .filter_map(|attribute| {
                read_attribute(resource, attribute).map(|value| (attribute.clone(), value))
            })
            .collect();
        let active = resource
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(Some(Remote {
            id,
            entry: UserEntry {
                external_id,
                attributes,
                active,
            },
        }))
    }
}

#[async_trait]
impl Connector for ScimConnector {
    async fn find_user(&self, external_id: &str) -> Result<Option<String>, ConnectorError> {
        self.find("Users", &self.settings.id_attribute, external_id)
            .await
    }

    async fn create_user(&self, user: &UserEntry) -> Result<String, ConnectorError> {
        let created = self
            .call(
                Method::POST,
                self.url(&["Users"])?,
                Some(&self.user_resource(user, None)),
            )
            .await?;
        resource_id(&created)
    }

    async fn replace_user(&self, id: &str, user: &UserEntry) -> Result<String, ConnectorError> {
        self.replace("Users", id, &self.user_resource(user, Some(id)))
            .await
    }

    async fn delete_user(&self, id: &str) -> Result<(), ConnectorError> {
        self.delete("Users", id).await?;
        self.users.forget(id);
        // The target may have taken the user out of its groups without dating the change.
        self.groups.clear();
        Ok(())
    }

    async fn create_users(
        &self,
        users: &[UserEntry],
    ) -> Result<Vec<Result<String, ConnectorError>>, ConnectorError> {
        if !self.settings.bulk {
            return create_each(self, users).await;
        }
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.bulk_size().await?;
        let mut created = Vec::with_capacity(users.len());
        for chunk in users.chunks(size) {
            match self.bulk_create(chunk).await {
                Ok(outcomes) => created.extend(outcomes),
                Err(error @ ConnectorError::Unavailable(_)) => return Err(error),
                Err(error) => created.extend(chunk.iter().map(|_| Err(error.clone()))),
            }
        }
        Ok(created)
    }

    async fn list_users(&self) -> Result<Vec<Remote<UserEntry>>, ConnectorError> {
        let (users, in_full) = self
            .listing("Users", &self.users, |resource| self.user_entry(resource))
            .await?;
        if in_full {
            // Users may have gone, and with them memberships the target did not date.
            self.groups.clear();
        }
        Ok(users)
    }

    async fn find_group(&self, group: &GroupEntry) -> Result<Option<String>, ConnectorError> {
        self.find("Groups", "externalId", &group.external_id).await
    }

    async fn create_group(&self, group: &GroupEntry) -> Result<String, ConnectorError> {
        let created = self
            .call(
                Method::POST,
                self.url(&["Groups"])?,
                Some(&group_resource(group, None)),
            )
            .await?;
        resource_id(&created)
    }

    async fn replace_group(&self, id: &str, group: &GroupEntry) -> Result<String, ConnectorError> {
        self.replace("Groups", id, &group_resource(group, Some(id)))
            .await
    }

    async fn delete_group(&self, id: &str) -> Result<(), ConnectorError> {
        self.delete("Groups", id).await?;
        self.groups.forget(id);
        Ok(())
    }

    async fn list_groups(&self) -> Result<Vec<Remote<GroupEntry>>, ConnectorError> {
        let (groups, _) = self.listing("Groups", &self.groups, group_entry).await?;
        Ok(groups)
    }
}

/// Makes ring rustls' process-wide provider, unless one is installed already: reqwest is built
/// without a provider in this workspace, so one must be there before a client is built.
fn use_ring_for_tls() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: then there is a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// `error` and its sources, outermost first.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether the media type of a `Content-Type` value is one cadre reads.
fn is_json_media_type(content_type: &str) -> bool {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json" || media_type == SCIM_MEDIA_TYPE
}

/// The error for an answer with the unsuccessful `status` and the SCIM error `body`:
/// unavailable for a 5xx, a 408 or a 429, refused for any other.
fn failure(status: StatusCode, body: Option<&Value>) -> ConnectorError {
    let mut message = format!("HTTP {status}");
    if let Some(scim_type) = body
        .and_then(|body| body.get("scimType"))
        .and_then(Value::as_str)
    {
        message.push_str(&format!(" ({scim_type})"));
    }
    if let Some(detail) = body
        .and_then(|body| body.get("detail"))
        .and_then(Value::as_str)
    {
        message.push_str(": ");
        message.push_str(&truncated(detail, MAX_DETAIL_CHARS));
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        ConnectorError::Unavailable(message)
    } else if status.is_redirection() {
        ConnectorError::Refused(format!("{message}: cadre does not follow redirects"))
    } else {
        ConnectorError::Refused(message)
    }
}

/// `text`, cut to `max` characters with `…` after a cut.
fn truncated(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The SCIM filter `attribute eq "value"`, with `"` and `\` escaped in `value`.
fn equality_filter(attribute: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{attribute} eq \"{escaped}\"")
}

/// The `totalResults` of a list answer.
fn total_results(list: &Value) -> Result<u64, ConnectorError> {
    list.get("totalResults")
        .and_then(Value::as_u64)
        .ok_or_else(|| ConnectorError::Protocol("a list without totalResults".to_owned()))
}

/// When the target last changed `resource` (its `meta.lastModified`), if it says.
fn last_modified(resource: &Value) -> Option<DateTime<Utc>> {
    let modified = resource.pointer("/meta/lastModified")?.as_str()?;
    DateTime::parse_from_rfc3339(modified)
        .ok()
        .map(|modified| modified.with_timezone(&Utc))
}

/// The resources of a list answer (none when it has no `Resources`).
fn resources(list: &Value) -> Result<&[Value], ConnectorError> {
    match list.get("Resources") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(resources)) => Ok(resources),
        Some(_) => Err(ConnectorError::Protocol(
            "a list whose Resources is not an array".to_owned(),
        )),
    }
}

/// The `id` of `resource`.
fn resource_id(resource: &Value) -> Result<String, ConnectorError> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ConnectorError::Protocol("a resource without an id".to_owned()))
}

/// Whether `attribute` is one of the [`MULTI_VALUED`] ones.
fn is_multi_valued(attribute: &str) -> bool {
    MULTI_VALUED
        .iter()
        .any(|multi| multi.eq_ignore_ascii_case(attribute))
}

/// Sets the attribute `path` of `resource` to `value`: the primary value of a multi-valued
/// attribute, a sub-attribute for a dotted path (a plain value on the way is replaced), a
/// plain attribute otherwise.
fn insert_attribute(resource: &mut Map<String, Value>, path: &str, value: &str) {
    if is_multi_valued(path) {
        resource.insert(
            path.to_owned(),
            json!([{ "value": value, "type": "work", "primary": true }]),
        );
        return;
    }
    let mut object = resource;
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        if names.peek().is_none() {
            object.insert(name.to_owned(), json!(value));
            return;
        }
        let child = object
            .entry(name.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
        }
        let Value::Object(child) = child else {
            return;
        };
        object = child;
    }
}

/// The member of `object` named `name`, whatever its case (SCIM names are case-insensitive).
fn member<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .as_object()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// The text of a single value: a string, a number or a boolean.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The value of the attribute `path` of `resource`, read as [`insert_attribute`] writes it:
/// the primary (else the first) value of a multi-valued attribute.
fn read_attribute(resource: &Value, path: &str) -> Option<String> {
    if is_multi_valued(path) {
        let values = member(resource, path)?.as_array()?;
        let chosen = values
            .iter()
            .find(|value| member(value, "primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| values.first())?;
        return text(member(chosen, "value")?);
    }
    path.split('.')
        .try_fold(resource, |object, name| member(object, name))
        .and_then(text)
}

/// `group` as a SCIM Group resource, with `id` when it replaces one.
fn group_resource(group: &GroupEntry, id: Option<&str>) -> Value {
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|member| json!({ "value": member }))
        .collect();
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "externalId": group.external_id,
        "displayName": group.name,
        "members": members,
    });
    if let (Some(id), Some(object)) = (id, resource.as_object_mut()) {
        object.insert("id".to_owned(), json!(id));
    }
    resource
}

/// The group `resource` holds; `None` when it has no `externalId` (cadre did not make it).
/// Its members are its user members' remote ids, sorted.
fn group_entry(resource: &Value) -> Result<Option<Remote<GroupEntry>>, ConnectorError> {
    let id = resource_id(resource)?;
    let Some(external_id) = member(resource, "externalId").and_then(text) else {
        return Ok(None);
    };
    let name = member(resource, "displayName")
        .and_then(text)
        .unwrap_or_default();
    let members: BTreeSet<String> = member(resource, "members")
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter(|member_value| {
                    member(member_value, "type")
                        .and_then(Value::as_str)
                        .is_none_or(|kind| kind.eq_ignore_ascii_case("User"))
                })
                .filter_map(|member_value| member(member_value, "value").and_then(text))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Remote {
        id,
        entry: GroupEntry {
            external_id,
            name,
            members: members.into_iter().collect(),
        },
    }))
}

/// The remote id of the user one operation of a bulk answer created, or why it was not.
fn bulk_outcome(operation: &Value) -> Result<String, ConnectorError> {
    let status = match operation.get("status") {
        Some(Value::String(status)) => status.trim().parse::<u16>().ok(),
        Some(Value::Number(status)) => status.as_u64().and_then(|code| u16::try_from(code).ok()),
        _ => None,
    }
    .and_then(|code| StatusCode::from_u16(code).ok())
    .ok_or_else(|| ConnectorError::Protocol("a bulk operation without a status".to_owned()))?;
    let response = operation.get("response");
    if !status.is_success() {
        return Err(failure(status, response));
    }
    response
        .and_then(|response| response.get("id"))
        .and_then(Value::as_str)
        .or_else(|| {
            operation
                .get("location")
                .and_then(Value::as_str)
                .and_then(|location| location.trim_end_matches('/').rsplit('/').next())
        })
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ConnectorError::Protocol("a bulk creation without a location or an id".to_owned())
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use super::*;

    fn connector(attributes: &[&str]) -> ScimConnector {
        ScimConnector::new(ScimSettings {
            base_url: "https://scim.example.com/v2/".to_owned(),
            username: None,
            secret: "s3cret-token".to_owned(),
            bulk: false,
            id_attribute: "externalId".to_owned(),
            attributes: attributes.iter().map(|name| (*name).to_owned()).collect(),
        })
        .unwrap()
    }

    fn user(attributes: &[(&str, &str)]) -> UserEntry {
        UserEntry {
            external_id: "u-1".to_owned(),
            attributes: attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            active: true,
        }
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let connector = connector(&[]);
        let printed = format!("{connector:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("scim.example.com"), "{printed}");
    }

    #[test]
    fn base_urls_must_be_http() {
        for base_url in ["ftp://x/v2", "not a url", "mailto:a@b"] {
            let settings = ScimSettings {
                base_url: base_url.to_owned(),
                ..connector(&[]).settings
            };
            assert!(matches!(
                ScimConnector::new(settings),
                Err(ConnectorError::Refused(_))
            ));
        }
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_ids() {
        let connector = connector(&[]);
        assert_eq!(
            connector.url(&["Users", "a/b c"]).unwrap().as_str(),
            "https://scim.example.com/v2/Users/a%2Fb%20c"
        );
    }

    #[test]
    fn users_map_to_scim_and_back() {
        let mapped = [
            "externalId",
            "userName",
            "name.givenName",
            "name.familyName",
            "emails",
        ];
        let connector = connector(&mapped);
        let user = user(&[
            ("externalId", "u-1"),
            ("userName", "ada"),
            ("name.givenName", "Ada"),
            ("name.familyName", "Lovelace"),
            ("emails", "ada@example.com"),
        ]);
        let mut resource = connector.user_resource(&user, Some("r-1"));
        assert_eq!(
            resource,
            json!({
                "schemas": [USER_SCHEMA],
                "id": "r-1",
                "externalId": "u-1",
                "userName": "ada",
                "name": { "givenName": "Ada", "familyName": "Lovelace" },
                "emails": [{ "value": "ada@example.com", "type": "work", "primary": true }],
                "active": true,
            })
        );
        resource["title"] = json!("not mapped");
        let read = connector.user_entry(&resource).unwrap().unwrap();
        assert_eq!(read.id, "r-1");
        assert_eq!(read.entry, user);
    }

    #[test]
    fn a_user_without_user_name_takes_the_external_id() {
        let connector = connector(&["externalId"]);
        let resource = connector.user_resource(&user(&[("externalId", "u-1")]), None);
        assert_eq!(resource["userName"], json!("u-1"));
        assert_eq!(resource.get("id"), None);
    }

    #[test]
    fn users_without_the_id_attribute_are_not_cadres() {
        let connector = connector(&["externalId"]);
        let resource = json!({ "id": "r-9", "userName": "someone" });
        assert_eq!(connector.user_entry(&resource).unwrap(), None);
        assert!(matches!(
            connector.user_entry(&json!({ "externalId": "x" })),
            Err(ConnectorError::Protocol(_))
        ));
    }

    #[test]
    fn the_primary_value_of_a_multi_valued_attribute_is_read() {
        let resource = json!({
            "emails": [
                { "value": "home@example.com", "type": "home" },
                { "value": "work@example.com", "primary": true },
            ],
        });
        assert_eq!(
            read_attribute(&resource, "emails").as_deref(),
            Some("work@example.com")
        );
    }

    #[test]
    fn filters_escape_quotes_and_backslashes() {
        assert_eq!(
            equality_filter("externalId", r#"a"b\c"#),
            r#"externalId eq "a\"b\\c""#
        );
    }

    #[test]
    fn failures_are_classified_by_status() {
        let body = json!({ "detail": "x".repeat(500), "scimType": "uniqueness" });
        let ConnectorError::Refused(message) = failure(StatusCode::CONFLICT, Some(&body)) else {
            panic!("a conflict is a refusal");
        };
        assert!(message.contains("409") && message.contains("uniqueness"));
        assert!(message.chars().count() < 260, "{message}");
        for status in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert!(matches!(
                failure(status, None),
                ConnectorError::Unavailable(_)
            ));
        }
        for status in [StatusCode::UNAUTHORIZED, StatusCode::FOUND] {
            assert!(matches!(failure(status, None), ConnectorError::Refused(_)));
        }
    }

    #[test]
    fn bulk_outcomes_give_ids_or_errors() {
        let created = json!({ "status": "201", "location": "https://x/v2/Users/abc" });
        assert_eq!(bulk_outcome(&created).unwrap(), "abc");
        let conflict = json!({ "status": 409, "response": { "detail": "taken" } });
        assert!(matches!(
            bulk_outcome(&conflict),
            Err(ConnectorError::Refused(_))
        ));
    }

    #[test]
    fn groups_map_to_scim_and_back() {
        let group = GroupEntry {
            external_id: "g-1".to_owned(),
            name: "Staff".to_owned(),
            members: vec!["a".to_owned(), "b".to_owned()],
        };
        let mut resource = group_resource(&group, Some("r-g"));
        resource["members"] = json!([
            { "value": "b" },
            { "value": "a", "type": "User" },
            { "value": "nested", "type": "Group" },
        ]);
        let read = group_entry(&resource).unwrap().unwrap();
        assert_eq!(read.id, "r-g");
        assert_eq!(read.entry, group);
        assert_eq!(group_entry(&json!({ "id": "other" })).unwrap(), None);
    }
}
