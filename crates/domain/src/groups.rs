//! Workflow groups: teams of users attached to a workflow, with files they upload.
//!
//! A group belongs to one workflow (by name), has an owner who is always a member, a set of
//! members (User subscriptions), group-specific parameters (a form schema), a copy of the
//! workflow's spec taken when the group was created, an optional engine configuration, and
//! uploaded files. File content lives on a [`FileVolume`] under an opaque key; the database
//! keeps a row per file whose [`FileStatus`] says whether the content is complete.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::error::{DomainError, Result};

/// The longest group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 512;

/// The longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// A workflow group's identifier: 1 to 32 characters of `[A-Za-z0-9_]`, given by the caller or
/// generated as 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupId(String);

impl GroupId {
    /// Validates a caller-given identifier.
    pub fn parse(value: &str) -> Result<Self> {
        let valid = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(DomainError::invalid(
                "identifier",
                format!("{value:?} is not 1 to 32 characters of letters, digits and underscores"),
            ))
        }
    }

    /// The identifier made from an internal id: its 32 lowercase hex digits.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id.simple().to_string())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GroupId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<GroupId> for String {
    fn from(id: GroupId) -> Self {
        id.0
    }
}

/// Unicode's bidirectional formatting characters: marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Trims and NFC-normalises `value`, then checks it is 1 to `max` characters without control
/// or bidirectional formatting characters.
fn display_text(field: &str, value: &str, max: usize) -> Result<String> {
    let text: String = value.trim().nfc().collect();
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        return Err(DomainError::invalid(
            field,
            format!("needs 1 to {max} characters (surrounding spaces do not count)"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    if text.chars().any(is_bidi_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain bidirectional control characters (they disguise what a name says, \
             such as a file's real extension)",
        ));
    }
    Ok(text)
}

/// A group's name: trimmed, NFC-normalised, 1 to 512 characters, no control characters.
///
/// Names are unique per workflow by their [`GroupName::key`], so `Team A`, `team a` and
/// ` Team A ` are one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    /// Normalises and validates `value`.
    pub fn parse(value: &str) -> Result<Self> {
        display_text("name", value, MAX_GROUP_NAME_CHARS).map(Self)
    }

    /// The name as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names are compared in: lowercase, inner whitespace runs collapsed to one space.
    pub fn key(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GroupName {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<GroupName> for String {
    fn from(name: GroupName) -> Self {
        name.0
    }
}

/// An uploaded file's name: trimmed, NFC-normalised, 1 to 255 characters, without control
/// characters or path separators, and neither `.` nor `..`. It is shown and sent back as the
/// download name; it never becomes part of a storage path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    /// Normalises and validates `value`.
    pub fn parse(value: &str) -> Result<Self> {
        let name = display_text("file name", value, MAX_FILE_NAME_CHARS)?;
        if name.contains(['/', '\\']) {
            return Err(DomainError::invalid(
                "file name",
                "must not contain a path separator (/ or \\)",
            ));
        }
        if name == "." || name == ".." {
            return Err(DomainError::invalid("file name", "must not be . or .."));
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FileName {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<FileName> for String {
    fn from(name: FileName) -> Self {
        name.0
    }
}

/// A workflow group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowGroup {
    /// The group's identifier.
    pub id: GroupId,
    /// The name of the workflow the group belongs to.
    pub workflow: String,
    /// The group's name, unique within its workflow.
    pub name: GroupName,
    /// The User subscription that owns the group; always a member.
    pub owner: Uuid,
    /// The User subscriptions that are members, owner included.
    pub members: BTreeSet<Uuid>,
    /// Group-specific parameters: a form schema (JSON object).
    pub parameters: serde_json::Value,
    /// The workflow's spec as it was when the group was created.
    pub workflow_spec: serde_json::Value,
    /// Engine settings for the group's runs, if any.
    pub engine_config: Option<serde_json::Value>,
    /// When the group was created.
    pub created_at: DateTime<Utc>,
}

/// Where an uploaded file's content stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// The row is recorded and the content is being written; not listed.
    Uploading,
    /// The content is complete: the file is listed and can be read.
    Stored,
    /// The file is being removed; not listed. The content may or may not still exist.
    Deleting,
}

impl FileStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Uploading => "uploading",
            FileStatus::Stored => "stored",
            FileStatus::Deleting => "deleting",
        }
    }
}

impl std::str::FromStr for FileStatus {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "uploading" => Ok(FileStatus::Uploading),
            "stored" => Ok(FileStatus::Stored),
            "deleting" => Ok(FileStatus::Deleting),
            other => Err(DomainError::invalid(
                "file status",
                format!("{other:?} is not one of uploading, stored, deleting"),
            )),
        }
    }
}

/// An uploaded file of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFile {
    /// The file's id.
    pub id: Uuid,
    /// The group it belongs to.
    pub group_id: GroupId,
    /// The name it was uploaded with.
    pub name: FileName,
    /// The opaque key of its content on the file volume.
    pub key: String,
    /// Its media type, from the name and a sniff of the content; `None` when neither tells.
    pub mime_type: Option<String>,
    /// Its size in bytes (0 until stored).
    pub size: u64,
    /// Whether its content is complete.
    pub status: FileStatus,
    /// When the upload started.
    pub created_at: DateTime<Utc>,
}

/// Workflow groups, their members and their file rows.
#[async_trait]
pub trait WorkflowGroupRepository: Send + Sync {
    /// Stores a new group with its members. A taken id, or a name whose key another group of
    /// the workflow has, is a conflict.
    async fn create_group(&self, group: &WorkflowGroup) -> Result<()>;
    /// One group with its members.
    async fn group(&self, id: &GroupId) -> Result<WorkflowGroup>;
    /// Groups in creation order, of `workflow` if given, with `member` among the members if
    /// given.
    async fn list_groups(
        &self,
        workflow: Option<&str>,
        member: Option<Uuid>,
    ) -> Result<Vec<WorkflowGroup>>;
    /// Saves a group's name and exact member set (a name another group of the workflow has is
    /// a conflict).
    async fn update_group(&self, group: &WorkflowGroup) -> Result<()>;
    /// Removes a group, its members and its file rows.
    async fn delete_group(&self, id: &GroupId) -> Result<()>;
    /// Records a new file row.
    async fn insert_file(&self, file: &GroupFile) -> Result<()>;
    /// Saves a file row's status, size and media type.
    async fn update_file(&self, file: &GroupFile) -> Result<()>;
    /// One file row of a group, whatever its status.
    async fn group_file(&self, group: &GroupId, id: Uuid) -> Result<GroupFile>;
    /// A group's file rows in upload order, only those in `status` if given.
    async fn group_files(
        &self,
        group: &GroupId,
        status: Option<FileStatus>,
    ) -> Result<Vec<GroupFile>>;
    /// Every group's file rows in `status` created before `before`, oldest first.
    async fn files_in_status(
        &self,
        status: FileStatus,
        before: DateTime<Utc>,
    ) -> Result<Vec<GroupFile>>;
    /// Removes one file row; removing a missing row changes nothing.
    async fn delete_file(&self, id: Uuid) -> Result<()>;
}

/// A stream of content chunks, as uploads arrive and downloads leave.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where file content is kept, by opaque key: a local folder, an object store, memory.
#[async_trait]
pub trait FileVolume: Send + Sync {
    /// Writes `content` under `key` and returns the bytes written. The content appears under
    /// the key only once complete: a failed write (of the volume, or an error from `content`)
    /// leaves nothing under the key.
    async fn write(&self, key: &str, content: ByteStream) -> io::Result<u64>;
    /// Reads the content under `key`; a missing key is [`io::ErrorKind::NotFound`].
    async fn read(&self, key: &str) -> io::Result<ByteStream>;
    /// Removes the content under `key`; removing a missing key succeeds.
    async fn delete(&self, key: &str) -> io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_one_to_32_word_characters() {
        for valid in ["a", "G_1", &"x".repeat(32)] {
            assert_eq!(GroupId::parse(valid).unwrap().as_str(), valid);
        }
        for invalid in ["", "a-b", "a b", "é", &"x".repeat(33), "../x"] {
            assert!(
                matches!(
                    GroupId::parse(invalid),
                    Err(DomainError::InvalidArgument { ref field, .. }) if field == "identifier"
                ),
                "{invalid:?} was accepted"
            );
        }
    }

    #[test]
    fn generated_group_ids_are_32_lowercase_hex_digits() {
        let id = GroupId::from_uuid(Uuid::now_v7());
        assert_eq!(id.as_str().len(), 32);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(GroupId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn group_names_are_trimmed_and_bounded() {
        assert_eq!(GroupName::parse("  G1 ").unwrap().as_str(), "G1");
        assert!(GroupName::parse("   ").is_err());
        assert!(GroupName::parse(&"n".repeat(MAX_GROUP_NAME_CHARS)).is_ok());
        assert!(GroupName::parse(&"n".repeat(MAX_GROUP_NAME_CHARS + 1)).is_err());
        assert!(GroupName::parse("a\tb").is_err());
    }

    #[test]
    fn group_name_keys_ignore_case_spacing_and_normal_form() {
        let composed = GroupName::parse("Équipe  A").unwrap();
        let decomposed = GroupName::parse(" e\u{301}quipe a").unwrap();
        assert_eq!(composed.key(), decomposed.key());
        assert_ne!(
            composed.key(),
            GroupName::parse("Equipe A").unwrap().key(),
            "accents are kept"
        );
    }

    #[test]
    fn file_names_refuse_separators_control_characters_and_dots() {
        assert_eq!(FileName::parse(" data.csv ").unwrap().as_str(), "data.csv");
        for invalid in [
            "",
            " ",
            "a/b.csv",
            "..\\x",
            "../../etc/passwd",
            "tab\there",
            "nul\0",
            ".",
            "..",
            &"f".repeat(MAX_FILE_NAME_CHARS + 1),
        ] {
            assert!(
                FileName::parse(invalid).is_err(),
                "{invalid:?} was accepted"
            );
        }
        assert!(FileName::parse(&"f".repeat(MAX_FILE_NAME_CHARS)).is_ok());
        assert!(FileName::parse(".hidden").is_ok());
    }

    #[test]
    fn names_refuse_bidirectional_controls_that_disguise_them() {
        // With U+202E (right-to-left override), "invoice fdp.exe" shows as "invoice exe.pdf".
        for disguised in [
            "invoice\u{202E}fdp.exe",
            "a\u{2066}b",
            "a\u{200F}b",
            "a\u{061C}b",
        ] {
            let refused = FileName::parse(disguised).unwrap_err().to_string();
            assert!(
                refused.contains("bidirectional"),
                "{disguised:?}: {refused}"
            );
            assert!(GroupName::parse(disguised).is_err(), "{disguised:?}");
        }
        // Right-to-left text itself is welcome.
        assert!(FileName::parse("\u{05E9}\u{05DC}\u{05D5}\u{05DD}.txt").is_ok());
    }

    #[test]
    fn file_statuses_round_trip_their_strings() {
        for status in [
            FileStatus::Uploading,
            FileStatus::Stored,
            FileStatus::Deleting,
        ] {
            assert_eq!(status.as_str().parse::<FileStatus>(), Ok(status));
        }
        assert!("gone".parse::<FileStatus>().is_err());
    }
}
