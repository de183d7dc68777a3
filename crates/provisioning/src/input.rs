//! Bulk-provisioning input: user and user-group rows read from CSV, JSON or JSON Lines.
//!
//! Every row is validated and *all* problems are reported together (row, column, reason) before
//! anything is written anywhere. The column layout follows gooddata-pipelines' input models:
//!
//! * users: `user_id, firstname, lastname, email, auth_id, user_groups`;
//! * user groups: `user_group_id, user_group_name, parent_user_groups`;
//!
//! plus `is_active` for incremental loads only. Both formats are first turned into one raw row
//! (column → JSON value; CSV cells become strings, empty cells null, list cells arrays split on
//! `|`), which then goes through a single validation path per row type.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use cadre_domain::{DomainError, Email, ExternalId, Name};
use cadre_products::models::Employment;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Input file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma-separated values with a header line; list cells are `|`-separated.
    Csv,
    /// A top-level JSON array of objects.
    Json,
    /// One JSON object per line; blank lines are skipped.
    JsonLines,
}

impl Format {
    /// The format implied by the file extension (`.csv`, `.json`, `.jsonl` or `.ndjson`, in any
    /// case), or `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Which kind of load: full loads have no `is_active` column; incremental loads require it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The input is the complete desired state; every row is active.
    Full,
    /// The input lists changes; each row says whether it is active (upsert) or not (removal).
    Incremental,
}

/// One user row, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Where the row is in the input (CSV line, JSON Lines line or JSON array position).
    pub row: u64,
    /// The user's external identifier.
    pub user_id: ExternalId,
    /// The first name, if given.
    pub firstname: Option<Name>,
    /// The last name, if given.
    pub lastname: Option<Name>,
    /// The email address; always `Some` for active rows.
    pub email: Option<Email>,
    /// The identity-provider subject, if given.
    pub auth_id: Option<String>,
    /// The groups the user belongs to, deduplicated and sorted.
    pub user_groups: Vec<ExternalId>,
    /// `true` for full loads; the `is_active` value for incremental loads.
    pub active: bool,
    /// The user name a new user gets; `None` names them by their id. Files have no such
    /// column (a load names its users by their ids); a SCIM client's `userName` comes here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<Name>,
    /// Where a new user works; `None` leaves it as it is. Files have no such columns; a SCIM
    /// client's enterprise extension comes here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employment: Option<Employment>,
    /// Whether a new user is created disabled (SCIM's `active: false`; `active` is whether
    /// the row upserts or removes). Files have no such column.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// One user-group row, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroupRow {
    /// Where the row is in the input (CSV line, JSON Lines line or JSON array position).
    pub row: u64,
    /// The group's external identifier.
    pub user_group_id: ExternalId,
    /// The display name; the identifier when the input leaves it null or empty.
    pub user_group_name: Name,
    /// The parent groups, deduplicated and sorted.
    pub parent_user_groups: Vec<ExternalId>,
    /// `true` for full loads; the `is_active` value for incremental loads.
    pub active: bool,
}

/// One problem with the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The row at fault (row 1 is the CSV header; row 0 is the whole JSON document).
    pub row: u64,
    /// The column at fault, if the problem is with one column.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "row {}, column {column}: {}", self.row, self.reason),
            None => write!(f, "row {}: {}", self.row, self.reason),
        }
    }
}

/// Every problem found, in input order; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct InputErrors(pub Vec<RowError>);

fn lines(errors: &[RowError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

const IS_ACTIVE: &str = "is_active";

/// The columns of one row type: the first is the id; `list` is the one list column (which may
/// be omitted); `unique` must not repeat among active rows.
struct Spec {
    columns: &'static [&'static str],
    list: &'static str,
    unique: &'static str,
}

const USERS: Spec = Spec {
    columns: &[
        "user_id",
        "firstname",
        "lastname",
        "email",
        "auth_id",
        "user_groups",
    ],
    list: "user_groups",
    unique: "email",
};

const GROUPS: Spec = Spec {
    columns: &["user_group_id", "user_group_name", "parent_user_groups"],
    list: "parent_user_groups",
    unique: "user_group_name",
};

/// Reads and validates user rows; returns every problem found if there is any.
pub fn read_users(
    reader: impl Read,
    format: Format,
    mode: Mode,
) -> Result<Vec<UserRow>, InputErrors> {
    read(reader, format, &USERS, mode, user_row, |r| {
        let email = r.email.as_ref().map(Email::as_str);
        (r.row, &r.user_id, r.active, email)
    })
}

/// Reads and validates user-group rows; returns every problem found if there is any.
pub fn read_user_groups(
    reader: impl Read,
    format: Format,
    mode: Mode,
) -> Result<Vec<UserGroupRow>, InputErrors> {
    read(reader, format, &GROUPS, mode, group_row, |r| {
        let name = Some(r.user_group_name.as_str());
        (r.row, &r.user_group_id, r.active, name)
    })
}

/// What the cross-row checks need of a row: row number, id, active, and the value (email or
/// name) that must be unique among active rows.
type Keys<'r> = (u64, &'r ExternalId, bool, Option<&'r str>);

fn read<R>(
    reader: impl Read,
    format: Format,
    spec: &Spec,
    mode: Mode,
    validate: fn(&mut Cells<'_>, Mode) -> Option<R>,
    keys: fn(&R) -> Keys<'_>,
) -> Result<Vec<R>, InputErrors> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    read_raw(
        reader,
        format,
        spec,
        mode,
        &mut errors,
        |row, map, errors| {
            let (lenient, failed) = (false, false);
            let mut cells = Cells {
                row,
                map,
                spec,
                errors,
                lenient,
                failed,
            };
            rows.extend(validate(&mut cells, mode));
        },
    );
    cross_check(rows.iter().map(keys), spec, &mut errors);
    if errors.is_empty() {
        return Ok(rows);
    }
    errors.sort_by_key(|e| e.row); // stable: within a row, per-row errors precede cross-row ones
    Err(InputErrors(errors))
}

fn push(errors: &mut Vec<RowError>, row: u64, column: Option<&str>, reason: impl Into<String>) {
    let (column, reason) = (column.map(str::to_owned), reason.into());
    errors.push(RowError {
        row,
        column,
        reason,
    });
}

/// Parses the input into raw rows, checks their columns and hands each one to `each`.
/// Syntax errors are reported and end the reading.
fn read_raw(
    reader: impl Read,
    format: Format,
    spec: &Spec,
    mode: Mode,
    errors: &mut Vec<RowError>,
    mut each: impl FnMut(u64, &Map<String, Value>, &mut Vec<RowError>),
) {
    if format == Format::Csv {
        return read_csv(reader, spec, mode, errors, each);
    }
    let mut object = |row: u64, value: Value, errors: &mut Vec<RowError>| match value {
        Value::Object(map) => {
            check_columns(map.keys().map(String::as_str), spec, mode, row, errors);
            each(row, &map, errors);
        }
        other => {
            let reason = format!("must be a JSON object, got {}", kind(&other));
            push(errors, row, None, reason);
        }
    };
    match format {
        Format::Csv => {}
        Format::Json => match serde_json::from_reader::<_, Vec<Value>>(BufReader::new(reader)) {
            Ok(values) => {
                for (row, value) in (1..).zip(values) {
                    object(row, value, errors);
                }
            }
            Err(e) => push(errors, 0, None, format!("invalid JSON: {e}")),
        },
        Format::JsonLines => {
            let mut reader = BufReader::new(reader);
            let mut line = String::new();
            for row in 1.. {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) if line.trim().is_empty() => {}
                    Ok(_) => match serde_json::from_str(&line) {
                        Ok(value) => object(row, value, errors),
                        Err(e) => return push(errors, row, None, format!("invalid JSON: {e}")),
                    },
                    Err(e) => return push(errors, row, None, format!("cannot read line: {e}")),
                }
            }
        }
    }
}

fn read_csv(
    reader: impl Read,
    spec: &Spec,
    mode: Mode,
    errors: &mut Vec<RowError>,
    mut each: impl FnMut(u64, &Map<String, Value>, &mut Vec<RowError>),
) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::None)
        .flexible(false)
        .from_reader(reader);
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(e) => return push(errors, 1, None, format!("invalid CSV header: {e}")),
    };
    check_columns(headers.iter(), spec, mode, 1, errors);
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let row = e.position().map_or(0, csv::Position::line);
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len: n,
                        len,
                        ..
                    } => {
                        format!("has {len} fields, but the header has {n}")
                    }
                    _ => format!("invalid CSV: {e}"),
                };
                return push(errors, row, None, reason);
            }
        };
        let map: Map<String, Value> = headers
            .iter()
            .zip(record.iter())
            .map(|(column, cell)| {
                let value = match cell {
                    "" => Value::Null,
                    _ if column == spec.list => cell.split('|').collect(),
                    _ => Value::String(cell.to_owned()),
                };
                (column.to_owned(), value)
            })
            .collect();
        let row = record.position().map_or(0, csv::Position::line);
        each(row, &map, errors);
    }
}

/// Reports unknown, duplicated and missing columns.
fn check_columns<'k>(
    keys: impl Iterator<Item = &'k str>,
    spec: &Spec,
    mode: Mode,
    row: u64,
    errors: &mut Vec<RowError>,
) {
    let incremental = (mode == Mode::Incremental).then_some(IS_ACTIVE);
    let expected: Vec<&str> = spec.columns.iter().copied().chain(incremental).collect();
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key) {
            push(errors, row, Some(key), "appears more than once");
        } else if key == IS_ACTIVE && mode == Mode::Full {
            let reason = "is only allowed in incremental loads";
            push(errors, row, Some(key), reason);
        } else if !expected.contains(&key) {
            let reason = format!("unknown column; the columns are {}", expected.join(", "));
            push(errors, row, Some(key), reason);
        }
    }
    for column in expected {
        if column != spec.list && !seen.contains(column) {
            push(errors, row, Some(column), "required column is missing");
        }
    }
}

/// One raw row being validated; collects its errors.
struct Cells<'a> {
    row: u64,
    map: &'a Map<String, Value>,
    spec: &'a Spec,
    errors: &'a mut Vec<RowError>,
    /// Inactive rows: errors in columns other than the id are ignored (the value becomes None).
    lenient: bool,
    failed: bool,
}

impl<'a> Cells<'a> {
    /// Parses `column`. A missing required column was already reported by [`check_columns`];
    /// the omittable list column counts as null.
    fn get<T>(
        &mut self,
        column: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let result = match self.map.get(column) {
            Some(value) => parse(value),
            None if column == self.spec.list => parse(&Value::Null),
            None => {
                self.failed = true;
                return None;
            }
        };
        match result {
            Ok(value) => Some(value),
            Err(_) if self.lenient => None,
            Err(reason) => {
                self.fail(column, reason);
                None
            }
        }
    }

    fn fail(&mut self, column: &str, reason: String) {
        self.failed = true;
        push(self.errors, self.row, Some(column), reason);
    }

    /// `Some(true)` for full loads, the parsed `is_active` (if valid) for incremental ones; also
    /// switches to lenient parsing for inactive rows.
    fn active(&mut self, mode: Mode) -> Option<bool> {
        let active = match mode {
            Mode::Full => Some(true),
            Mode::Incremental => self.get(IS_ACTIVE, lax_bool),
        };
        self.lenient = active == Some(false);
        active
    }
}

fn user_row(cells: &mut Cells<'_>, mode: Mode) -> Option<UserRow> {
    let user_id = cells.get("user_id", id);
    let active = cells.active(mode);
    let firstname = cells.get("firstname", optional_name).flatten();
    let lastname = cells.get("lastname", optional_name).flatten();
    let email = cells.get("email", |value| {
        let text = text(value)?.ok_or("is required: a cadre user needs an email address")?;
        Email::parse(text).map_err(reason)
    });
    let auth_id = cells
        .get("auth_id", |v| Ok(printable(text(v)?)?.map(str::to_owned)))
        .flatten();
    let user_groups = cells.get("user_groups", ids).unwrap_or_default();
    if cells.failed {
        return None;
    }
    Some(UserRow {
        row: cells.row,
        user_id: user_id?,
        firstname,
        lastname,
        email,
        auth_id,
        user_groups,
        active: active?,
        username: None,
        employment: None,
        disabled: false,
    })
}

fn group_row(cells: &mut Cells<'_>, mode: Mode) -> Option<UserGroupRow> {
    let user_group_id = cells.get("user_group_id", id);
    let active = cells.active(mode);
    let name = cells.get("user_group_name", optional_name);
    let parent_user_groups = cells.get("parent_user_groups", ids).unwrap_or_default();
    let user_group_id = user_group_id.filter(|_| !cells.failed)?;
    let user_group_name = match name.flatten() {
        Some(name) => name,
        // Cannot fail (every external id is a valid name), but report rather than panic.
        None => match Name::parse(user_group_id.as_str()) {
            Ok(name) => name,
            Err(e) => {
                cells.fail("user_group_name", reason(e));
                return None;
            }
        },
    };
    Some(UserGroupRow {
        row: cells.row,
        user_group_id,
        user_group_name,
        parent_user_groups,
        active: active?,
    })
}

/// Same id twice, and the same `key` (compared ignoring case) on two active rows.
fn cross_check<'r>(rows: impl Iterator<Item = Keys<'r>>, spec: &Spec, errors: &mut Vec<RowError>) {
    let (id_column, key_column) = (spec.columns[0], spec.unique);
    let mut ids: HashMap<&ExternalId, (u64, bool)> = HashMap::new();
    let mut keys: HashMap<String, (u64, &str)> = HashMap::new();
    for (row, id, active, key) in rows {
        if let Some(&(first, first_active)) = ids.get(id) {
            let reason = match (first_active, active) {
                (true, false) => format!("is both active (row {first}) and inactive (row {row})"),
                (false, true) => format!("is both active (row {row}) and inactive (row {first})"),
                _ => format!("also on row {first}"),
            };
            let reason = format!("{id_column} {:?} {reason}", id.as_str());
            push(errors, row, Some(id_column), reason);
        } else {
            ids.insert(id, (row, active));
        }
        let Some(value) = key.filter(|_| active) else {
            continue;
        };
        match keys.entry(value.to_lowercase()) {
            Entry::Vacant(entry) => {
                entry.insert((row, value));
            }
            Entry::Occupied(entry) => {
                let (first, first_value) = *entry.get();
                let mut reason = format!("{key_column} {value:?} also on row {first}");
                if first_value != value {
                    reason.push_str(&format!(" as {first_value:?} (compared ignoring case)"));
                }
                push(errors, row, Some(key_column), reason);
            }
        }
    }
}

fn reason(error: DomainError) -> String {
    match error {
        DomainError::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string value; null and "" are `None`.
fn text(value: &Value) -> Result<Option<&str>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(format!("must be a string, got {}", kind(other))),
    }
}

/// Refuses control characters (which no identity provider issues, and PostgreSQL cannot
/// store as NUL).
fn printable(value: Option<&str>) -> Result<Option<&str>, String> {
    match value {
        Some(text) if text.chars().any(char::is_control) => {
            Err("must not contain control characters".to_owned())
        }
        other => Ok(other),
    }
}

fn id(value: &Value) -> Result<ExternalId, String> {
    ExternalId::parse(text(value)?.ok_or("is required")?).map_err(reason)
}

fn optional_name(value: &Value) -> Result<Option<Name>, String> {
    text(value)?.map(Name::parse).transpose().map_err(reason)
}

/// A list of ids (JSON array, or CSV cell split on `|`); null and "" are empty.
fn ids(value: &Value) -> Result<Vec<ExternalId>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(format!("must be an array of ids, got {}", kind(other))),
    };
    let mut set = BTreeSet::new();
    for item in items {
        match item {
            Value::String(s) if s.is_empty() => return Err("must not contain empty ids".to_owned()),
            Value::String(s) => set.insert(ExternalId::parse(s).map_err(reason)?),
            other => return Err(format!("must contain ids (strings), got {}", kind(other))),
        };
    }
    Ok(set.into_iter().collect())
}

/// A lax boolean, as pydantic accepts it.
fn lax_bool(value: &Value) -> Result<bool, String> {
    let got = match value {
        Value::Bool(b) => return Ok(*b),
        Value::Null => String::new(),
        Value::Number(n) if n.as_u64() == Some(1) => return Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => return Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => return Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => return Ok(false),
            _ => s.clone(),
        },
        other => other.to_string(),
    };
    if got.is_empty() {
        return Err("is required: must be true or false".to_owned());
    }
    Err(format!("must be a boolean (true or false), got {got:?}"))
}
