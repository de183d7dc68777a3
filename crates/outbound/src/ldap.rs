//! An LDAP directory as a target.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use async_trait::async_trait;
use futures_util::StreamExt;
use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry,
    SearchResult, ldap_escape,
};
use tokio::sync::Mutex;

use crate::connector::{Connector, ConnectorError, GroupEntry, REQUEST_TIMEOUT, Remote, UserEntry};

/// Entries per page of a listing (the Simple Paged Results control): slapd's default size
/// limit, so that no page exceeds it.
const PAGE_SIZE: i32 = 500;

/// Adds in flight at once on the one connection when many users are created: the directory
/// works on one while cadre sends the next.
const ADDS_IN_FLIGHT: usize = 4;

/// The attribute of a group that holds cadre's external id of it (`groupOfNames` allows it).
const GROUP_ID_ATTRIBUTE: &str = "businessCategory";

/// The attribute of a group that holds its members' DNs.
const MEMBER_ATTRIBUTE: &str = "member";

/// The member a group without members holds, since `groupOfNames` requires one: the empty DN.
const NO_MEMBER: &str = "";

/// LDAP result code `noSuchObject`.
const NO_SUCH_OBJECT: u32 = 32;

/// Asks a search for no attributes (RFC 4511), when only the DNs matter.
const NO_ATTRIBUTES: &str = "1.1";

/// How to reach an LDAP target.
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldaps://host:port` or `ldap://host:port`.
    pub url: String,
    /// Whether an `ldap://` connection is upgraded with StartTLS before binding.
    pub start_tls: bool,
    /// The DN cadre binds as.
    pub bind_dn: String,
    /// Its password.
    pub password: String,
    /// Where people go.
    pub people_dn: String,
    /// Where groups go.
    pub groups_dn: String,
    /// The object class of people.
    pub user_class: String,
    /// The object class of groups.
    pub group_class: String,
    /// The attribute that takes cadre's `user_id`: the people's RDN attribute.
    pub id_attribute: String,
    /// Every attribute the target's mapping names (the id attribute among them): what a
    /// replaced user loses when cadre has no value for it, and what a listing reads.
    pub attributes: Vec<String>,
}

impl fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("start_tls", &self.start_tls)
            .field("bind_dn", &self.bind_dn)
            .field("password", &"…")
            .field("people_dn", &self.people_dn)
            .field("groups_dn", &self.groups_dn)
            .field("user_class", &self.user_class)
            .field("group_class", &self.group_class)
            .field("id_attribute", &self.id_attribute)
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// Speaks LDAP to one target.
///
/// People are `<id_attribute>=<external id>,<people_dn>` entries of the user class holding the
/// mapped attributes. A person-class entry (`person`, `organizationalPerson`, `inetOrgPerson`)
/// requires `cn` and `sn`: one without a `cn` gets the external id as its `cn`, one without an
/// `sn` gets its `cn` as its `sn` ([`Connector::written`] says so, for comparing). A listing
/// reads back the mapped attributes. LDAP has no `active` flag: cadre keeps inactive users out of every group,
/// so the connector ignores the flag when writing and reads every user back as active.
///
/// Groups are `cn=<name>,<groups_dn>` entries of the group class with their members' DNs in
/// `member` and cadre's external id of the group in `businessCategory`, by which they are
/// found. A group without members holds the empty DN as its only member (`groupOfNames`
/// requires one), which is never read back.
///
/// Listings use the Simple Paged Results control, so the bind DN must be allowed past the
/// server's size limit in paged searches (OpenLDAP: `limits … size.prtotal=unlimited`);
/// a listing the server cuts short is an error, never a partial answer.
///
/// It connects and binds on first use and keeps the connection until it fails.
pub struct LdapConnector {
    settings: LdapSettings,
    /// The bound connection, once made; its driver runs on a task of its own.
    connection: Mutex<Option<Ldap>>,
}

impl fmt::Debug for LdapConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConnector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LdapConnector {
    /// A connector for `settings`; it connects on first use.
    pub fn new(settings: LdapSettings) -> Self {
        Self {
            settings,
            connection: Mutex::new(None),
        }
    }

    /// A handle on the bound connection, connecting and binding if there is none.
    async fn handle(&self) -> Result<Ldap, ConnectorError> {
        let mut cached = self.connection.lock().await;
        if let Some(ldap) = cached.as_mut()
            && !ldap.is_closed()
        {
            return Ok(ldap.clone());
        }
        *cached = None;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(REQUEST_TIMEOUT)
            .set_starttls(self.settings.start_tls);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(failure)?;
        ldap3::drive!(conn);
        ldap.with_timeout(REQUEST_TIMEOUT)
            .simple_bind(&self.settings.bind_dn, &self.settings.password)
            .await
            .and_then(LdapResult::success)
            .map_err(failure)?;
        *cached = Some(ldap.clone());
        Ok(ldap)
    }

    /// `outcome`, after forgetting the connection if it says the target is unavailable, so
    /// that the next operation connects again.
    async fn settle<T>(&self, outcome: Result<T, ConnectorError>) -> Result<T, ConnectorError> {
        if let Err(ConnectorError::Unavailable(_)) = outcome {
            *self.connection.lock().await = None;
        }
        outcome
    }

    /// The DN of the user whose external id is `external_id`.
    fn user_dn(&self, external_id: &str) -> String {
        format!(
            "{}={},{}",
            self.settings.id_attribute,
            rdn_value(external_id),
            self.settings.people_dn
        )
    }

    /// Whether the user class requires `cn` and `sn` (it is `person` or derives from it).
    fn is_person_class(&self) -> bool {
        ["person", "organizationalPerson", "inetOrgPerson"]
            .iter()
            .any(|class| class.eq_ignore_ascii_case(&self.settings.user_class))
    }

    /// The attributes `user` is written with, by name, each with its value: the mapped ones
    /// it has a value for, its external id under the id attribute, and the `cn`/`sn`
    /// fallbacks of a person class.
    fn user_values(&self, user: &UserEntry) -> BTreeMap<String, String> {
        let mut values: BTreeMap<String, String> = user
            .attributes
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(attribute, value)| (attribute.clone(), value.clone()))
            .collect();
        values.insert(self.settings.id_attribute.clone(), user.external_id.clone());
        if self.is_person_class() {
            let cn = match value_of(&values, "cn") {
                Some(cn) => cn.to_owned(),
                None => {
                    values.insert("cn".to_owned(), user.external_id.clone());
                    user.external_id.clone()
                }
            };
            if value_of(&values, "sn").is_none() {
                values.insert("sn".to_owned(), cn);
            }
        }
        values
    }

    /// The DN of the only entry one level under `base` that `filter` matches, if any.
    async fn find_one(&self, base: &str, filter: &str) -> Result<Option<String>, ConnectorError> {
        let mut ldap = self.handle().await?;
        let outcome = search(&mut ldap, base, filter, vec![NO_ATTRIBUTES.to_owned()]).await;
        let entries = self.settle(outcome).await?;
        let mut dns = entries.into_iter().map(|entry| entry.dn);
        let found = dns.next();
        if dns.next().is_some() {
            return Err(ConnectorError::Refused(format!(
                "more than one entry under {base} matches {filter}"
            )));
        }
        Ok(found)
    }

    /// Adds the entry `dn` with `attributes`.
    async fn add(
        &self,
        dn: &str,
        attributes: Vec<(String, HashSet<String>)>,
    ) -> Result<(), ConnectorError> {
        let mut ldap = self.handle().await?;
        let outcome = ldap
            .with_timeout(REQUEST_TIMEOUT)
            .add(dn, attributes)
            .await
            .and_then(LdapResult::success)
            .map(drop)
            .map_err(failure);
        self.settle(outcome).await
    }

    /// Applies `changes` to the entry `dn`.
    async fn modify(&self, dn: &str, changes: Vec<Mod<String>>) -> Result<(), ConnectorError> {
        let mut ldap = self.handle().await?;
        let outcome = ldap
            .with_timeout(REQUEST_TIMEOUT)
            .modify(dn, changes)
            .await
            .and_then(LdapResult::success)
            .map(drop)
            .map_err(failure);
        self.settle(outcome).await
    }

    /// Deletes the entry `dn`; one already gone is no error.
    async fn delete(&self, dn: &str) -> Result<(), ConnectorError> {
        let mut ldap = self.handle().await?;
        let outcome = match ldap.with_timeout(REQUEST_TIMEOUT).delete(dn).await {
            Ok(result) if result.rc == NO_SUCH_OBJECT => Ok(()),
            outcome => outcome
                .and_then(LdapResult::success)
                .map(drop)
                .map_err(failure),
        };
        self.settle(outcome).await
    }

    /// Every entry one level under `base` that `filter` matches, with `attributes`.
    async fn list(
        &self,
        base: &str,
        filter: &str,
        attributes: Vec<String>,
    ) -> Result<Vec<SearchEntry>, ConnectorError> {
        let mut ldap = self.handle().await?;
        let outcome = search(&mut ldap, base, filter, attributes).await;
        self.settle(outcome).await
    }
}

#[async_trait]
impl Connector for LdapConnector {
    async fn find_user(&self, external_id: &str) -> Result<Option<String>, ConnectorError> {
        let filter = format!(
            "(&(objectClass={})({}={}))",
            ldap_escape(&self.settings.user_class),
            self.settings.id_attribute,
            ldap_escape(external_id)
        );
        self.find_one(&self.settings.people_dn, &filter).await
    }

    async fn create_user(&self, user: &UserEntry) -> Result<String, ConnectorError> {
        let dn = self.user_dn(&user.external_id);
        let mut attributes = vec![(
            "objectClass".to_owned(),
            HashSet::from([self.settings.user_class.clone()]),
        )];
        attributes.extend(
            self.user_values(user)
                .into_iter()
                .map(|(attribute, value)| (attribute, HashSet::from([value]))),
        );
        self.add(&dn, attributes).await?;
        Ok(dn)
    }

    async fn create_users(
        &self,
        users: &[UserEntry],
    ) -> Result<Vec<Result<String, ConnectorError>>, ConnectorError> {
        let adds: Vec<_> = users.iter().map(|user| self.create_user(user)).collect();
        let mut creating = futures_util::stream::iter(adds).buffered(ADDS_IN_FLIGHT);
        let mut created = Vec::with_capacity(users.len());
        while let Some(outcome) = creating.next().await {
            match outcome {
                Err(error @ ConnectorError::Unavailable(_)) => return Err(error),
                outcome => created.push(outcome),
            }
        }
        Ok(created)
    }

    async fn replace_user(&self, id: &str, user: &UserEntry) -> Result<String, ConnectorError> {
        // The id attribute names the entry (its RDN), which cadre found by it: it stays.
        let id_attribute = &self.settings.id_attribute;
        let values = self.user_values(user);
        let mut names: Vec<&String> = self
            .settings
            .attributes
            .iter()
            .chain(values.keys())
            .filter(|attribute| !attribute.eq_ignore_ascii_case(id_attribute))
            .collect();
        names.sort_by_key(|attribute| attribute.to_ascii_lowercase());
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let changes = names
            .into_iter()
            .map(|attribute| {
                // Replacing with no values removes the attribute, and is a no-op where absent.
                let value = value_of(&values, attribute).map(str::to_owned);
                Mod::Replace(attribute.clone(), value.into_iter().collect())
            })
            .collect();
        self.modify(id, changes).await?;
        Ok(id.to_owned())
    }

    async fn delete_user(&self, id: &str) -> Result<(), ConnectorError> {
        self.delete(id).await
    }

    fn written(&self, user: &UserEntry) -> UserEntry {
        let mapped = |attribute: &String| {
            self.settings
                .attributes
                .iter()
                .any(|name| name.eq_ignore_ascii_case(attribute))
        };
        UserEntry {
            external_id: user.external_id.clone(),
            attributes: self
                .user_values(user)
                .into_iter()
                .filter(|(attribute, _)| mapped(attribute))
                .collect(),
            active: user.active,
        }
    }

    async fn list_users(&self) -> Result<Vec<Remote<UserEntry>>, ConnectorError> {
        let filter = format!("(objectClass={})", ldap_escape(&self.settings.user_class));
        let mut attributes = self.settings.attributes.clone();
        if !attributes
            .iter()
            .any(|attribute| attribute.eq_ignore_ascii_case(&self.settings.id_attribute))
        {
            attributes.push(self.settings.id_attribute.clone());
        }
        let entries = self
            .list(&self.settings.people_dn, &filter, attributes)
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let external_id = first(&entry, &self.settings.id_attribute)?.to_owned();
                let attributes: BTreeMap<String, String> = self
                    .settings
                    .attributes
                    .iter()
                    .filter_map(|attribute| {
                        first(&entry, attribute).map(|value| (attribute.clone(), value.to_owned()))
                    })
                    .collect();
                Some(Remote {
                    id: entry.dn,
                    entry: UserEntry {
                        external_id,
                        attributes,
                        active: true,
                    },
                })
            })
            .collect())
    }

    async fn find_group(&self, group: &GroupEntry) -> Result<Option<String>, ConnectorError> {
        let filter = format!(
            "(&(objectClass={})({GROUP_ID_ATTRIBUTE}={}))",
            ldap_escape(&self.settings.group_class),
            ldap_escape(&group.external_id)
        );
        self.find_one(&self.settings.groups_dn, &filter).await
    }

    async fn create_group(&self, group: &GroupEntry) -> Result<String, ConnectorError> {
        let dn = format!("{},{}", group_rdn(group), self.settings.groups_dn);
        let attributes = vec![
            (
                "objectClass".to_owned(),
                HashSet::from([self.settings.group_class.clone()]),
            ),
            ("cn".to_owned(), HashSet::from([group.name.clone()])),
            (
                GROUP_ID_ATTRIBUTE.to_owned(),
                HashSet::from([group.external_id.clone()]),
            ),
            (MEMBER_ATTRIBUTE.to_owned(), members(group)),
        ];
        self.add(&dn, attributes).await?;
        Ok(dn)
    }

    async fn replace_group(&self, id: &str, group: &GroupEntry) -> Result<String, ConnectorError> {
        let rdn = group_rdn(group);
        let dn = match id.strip_prefix(rdn.as_str()) {
            Some(rest) if rest.starts_with(',') => id.to_owned(),
            _ => {
                let parent = parent_dn(id).ok_or_else(|| {
                    ConnectorError::Protocol(format!("{id:?} is not the DN of a group"))
                })?;
                let mut ldap = self.handle().await?;
                let outcome = ldap
                    .with_timeout(REQUEST_TIMEOUT)
                    .modifydn(id, &rdn, true, None)
                    .await
                    .and_then(LdapResult::success)
                    .map_err(failure);
                self.settle(outcome).await?;
                format!("{rdn},{parent}")
            }
        };
        let changes = vec![
            Mod::Replace(
                GROUP_ID_ATTRIBUTE.to_owned(),
                HashSet::from([group.external_id.clone()]),
            ),
            Mod::Replace(MEMBER_ATTRIBUTE.to_owned(), members(group)),
        ];
        self.modify(&dn, changes).await?;
        Ok(dn)
    }

    async fn delete_group(&self, id: &str) -> Result<(), ConnectorError> {
        self.delete(id).await
    }

    async fn list_groups(&self) -> Result<Vec<Remote<GroupEntry>>, ConnectorError> {
        let filter = format!(
            "(&(objectClass={})({GROUP_ID_ATTRIBUTE}=*))",
            ldap_escape(&self.settings.group_class)
        );
        let attributes = vec![
            "cn".to_owned(),
            GROUP_ID_ATTRIBUTE.to_owned(),
            MEMBER_ATTRIBUTE.to_owned(),
        ];
        let entries = self
            .list(&self.settings.groups_dn, &filter, attributes)
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let external_id = first(&entry, GROUP_ID_ATTRIBUTE)?.to_owned();
                let name = first(&entry, "cn")?.to_owned();
                let mut members: Vec<String> = values(&entry, MEMBER_ATTRIBUTE)
                    .iter()
                    .filter(|member| member.as_str() != NO_MEMBER)
                    .cloned()
                    .collect();
                members.sort();
                Some(Remote {
                    id: entry.dn,
                    entry: GroupEntry {
                        external_id,
                        name,
                        members,
                    },
                })
            })
            .collect())
    }
}

/// Every entry one level under `base` that `filter` matches, with `attributes`, page by page.
/// A page the server ends with an error (its size limit, say) fails the whole search.
async fn search(
    ldap: &mut Ldap,
    base: &str,
    filter: &str,
    attributes: Vec<String>,
) -> Result<Vec<SearchEntry>, ConnectorError> {
    let mut found = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let SearchResult(entries, result) = ldap
            .with_controls(PagedResults {
                size: PAGE_SIZE,
                cookie,
            })
            .with_timeout(REQUEST_TIMEOUT)
            .search(base, Scope::OneLevel, filter, &attributes)
            .await
            .map_err(failure)?;
        let result = result.success().map_err(failure)?;
        found.extend(entries.into_iter().map(SearchEntry::construct));
        cookie = result
            .ctrls
            .iter()
            .find_map(|control| match control {
                Control(Some(ControlType::PagedResults), raw) if raw.val.is_some() => {
                    Some(raw.parse::<PagedResults>().cookie)
                }
                _ => None,
            })
            .unwrap_or_default();
        if cookie.is_empty() {
            return Ok(found);
        }
    }
}

/// The RDN of `group`: its name under `cn`.
fn group_rdn(group: &GroupEntry) -> String {
    format!("cn={}", rdn_value(&group.name))
}

/// `value` escaped for an RDN (RFC 4514) as OpenLDAP writes DNs back, so that a DN cadre
/// makes is the DN the server answers with: each of `"+,;<=>\` and NUL, a leading space or
/// `#` and a trailing space as a backslash and two upper-case hexadecimal digits.
fn rdn_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for (at, character) in value.char_indices() {
        let special = matches!(
            character,
            '"' | '+' | ',' | ';' | '<' | '=' | '>' | '\\' | '\0'
        ) || (at == 0 && matches!(character, ' ' | '#'))
            || (at + character.len_utf8() == value.len() && character == ' ');
        if special {
            escaped.push_str(&format!("\\{:02X}", u32::from(character)));
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// The member values of `group`: its members' DNs, or the empty DN when it has none.
fn members(group: &GroupEntry) -> HashSet<String> {
    if group.members.is_empty() {
        HashSet::from([NO_MEMBER.to_owned()])
    } else {
        group.members.iter().cloned().collect()
    }
}

/// The DN of the parent of `dn`: what follows its first unescaped comma.
fn parent_dn(dn: &str) -> Option<&str> {
    let mut escaped = false;
    for (at, character) in dn.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => return dn.get(at + 1..),
            _ => {}
        }
    }
    None
}

/// The value of `attribute` in `values`, its name matched regardless of case as LDAP does.
fn value_of<'a>(values: &'a BTreeMap<String, String>, attribute: &str) -> Option<&'a str> {
    values
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map(|(_, value)| value.as_str())
}

/// The (textual) values of `attribute` in `entry`, its name matched regardless of case.
fn values<'a>(entry: &'a SearchEntry, attribute: &str) -> &'a [String] {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map_or(&[], |(_, values)| values.as_slice())
}

/// The first (textual) value of `attribute` in `entry`.
fn first<'a>(entry: &'a SearchEntry, attribute: &str) -> Option<&'a str> {
    values(entry, attribute).first().map(String::as_str)
}

/// What `error` means for cadre.
fn failure(error: LdapError) -> ConnectorError {
    match error {
        LdapError::LdapResult { result } => refusal(&result),
        LdapError::Io { .. }
        | LdapError::Timeout { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream
        | LdapError::Rustls { .. } => ConnectorError::Unavailable(error.to_string()),
        other => ConnectorError::Protocol(other.to_string()),
    }
}

/// What the result `result`, an error, means for cadre: `busy`, `unavailable` and `other`
/// are worth trying again later, anything else is a refusal.
fn refusal(result: &LdapResult) -> ConnectorError {
    let text = result.to_string();
    match result.rc {
        51 | 52 | 80 => ConnectorError::Unavailable(text),
        _ => ConnectorError::Refused(text),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parent_dn_skips_escaped_commas() {
        assert_eq!(
            parent_dn(r"cn=a\,b,ou=groups,dc=example"),
            Some("ou=groups,dc=example")
        );
        assert_eq!(parent_dn(r"cn=a\\,ou=groups"), Some("ou=groups"));
        assert_eq!(parent_dn("dc=example"), None);
    }

    #[test]
    fn rdn_values_are_escaped_as_openldap_writes_them() {
        assert_eq!(rdn_value("plain Jürgen"), "plain Jürgen");
        assert_eq!(rdn_value("a,b+c=d"), r"a\2Cb\2Bc\3Dd");
        assert_eq!(rdn_value(r#"#"a\b;<>"#), r"\23\22a\5Cb\3B\3C\3E");
        assert_eq!(rdn_value(" a b "), r"\20a b\20");
        assert_eq!(rdn_value("a#"), "a#");
    }

    #[test]
    fn debug_hides_the_password() {
        let settings = LdapSettings {
            url: "ldap://127.0.0.1:389".to_owned(),
            start_tls: false,
            bind_dn: "cn=cadre".to_owned(),
            password: "hunter2".to_owned(),
            people_dn: "ou=people".to_owned(),
            groups_dn: "ou=groups".to_owned(),
            user_class: "inetOrgPerson".to_owned(),
            group_class: "groupOfNames".to_owned(),
            id_attribute: "uid".to_owned(),
            attributes: vec!["uid".to_owned()],
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
        let connector = LdapConnector::new(settings);
        assert!(!format!("{connector:?}").contains("hunter2"));
    }

    #[test]
    fn refusals_and_unavailability() {
        let result = |rc| LdapResult {
            rc,
            matched: String::new(),
            text: "no".to_owned(),
            refs: Vec::new(),
            ctrls: Vec::new(),
        };
        assert!(matches!(refusal(&result(49)), ConnectorError::Refused(_)));
        assert!(matches!(refusal(&result(68)), ConnectorError::Refused(_)));
        assert!(matches!(
            refusal(&result(52)),
            ConnectorError::Unavailable(_)
        ));
    }
}
