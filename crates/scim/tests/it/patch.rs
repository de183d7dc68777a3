//! PATCH requests as identity providers send them (Entra ID, Okta, and RFC 7644's examples),
//! applied to a user and a group.

use cadre_scim::{AttrPath, Attributes, PatchKind, ScimType, apply_patch, parse_patch};
use serde_json::{Map, Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn multi_valued(path: &AttrPath) -> bool {
    ["emails", "members", "groups", "phoneNumbers"]
        .iter()
        .any(|name| name.eq_ignore_ascii_case(&path.name))
}

const ATTRIBUTES: Attributes = Attributes {
    case_exact: |path| path.name.eq_ignore_ascii_case("id"),
    multi_valued,
    extensions: &[ENTERPRISE],
};

fn user() -> Map<String, Value> {
    json!({
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
    })
    .as_object()
    .unwrap()
    .clone()
}

fn group(members: &[&str]) -> Map<String, Value> {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    json!({"displayName": "Tour Guides", "members": members})
        .as_object()
        .unwrap()
        .clone()
}

fn patched(mut resource: Map<String, Value>, operations: Value) -> Value {
    let operations = parse_patch(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    }))
    .unwrap();
    apply_patch(&mut resource, &operations, &ATTRIBUTES).unwrap();
    Value::Object(resource)
}

fn member_ids(group: &Value) -> Vec<&str> {
    group["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|member| member["value"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn operation_names_are_read_in_any_case() {
    for (op, kind) in [
        ("add", PatchKind::Add),
        ("Add", PatchKind::Add),
        ("REPLACE", PatchKind::Replace),
        ("Remove", PatchKind::Remove),
    ] {
        let operations = parse_patch(&json!({"Operations": [
            {"op": op, "path": "title", "value": "x"}
        ]}))
        .unwrap();
        assert_eq!(operations[0].kind, kind, "{op}");
    }
    let refused = parse_patch(&json!({"Operations": [{"op": "merge", "path": "title"}]}));
    assert_eq!(
        refused.unwrap_err().scim_type,
        Some(ScimType::InvalidSyntax)
    );
    let refused = parse_patch(&json!({"Operations": [{"op": "remove"}]}));
    assert_eq!(refused.unwrap_err().scim_type, Some(ScimType::NoTarget));
    let refused = parse_patch(&json!({"Operations": [{"op": "add", "path": "title"}]}));
    assert_eq!(refused.unwrap_err().scim_type, Some(ScimType::InvalidValue));
    let refused = parse_patch(&json!({"Operations": [{"op": "add", "path": "emails[type eq"}]}));
    assert_eq!(refused.unwrap_err().scim_type, Some(ScimType::InvalidPath));
    let many: Vec<Value> = (0..1001).map(|n| json!({"value": n.to_string()})).collect();
    let refused =
        parse_patch(&json!({"Operations": [{"op": "add", "path": "members", "value": many}]}));
    assert_eq!(refused.unwrap_err().scim_type, Some(ScimType::TooMany));
    let refused = parse_patch(&json!({"operations": "none"}));
    assert_eq!(
        refused.unwrap_err().scim_type,
        Some(ScimType::InvalidSyntax)
    );
}

#[test]
fn a_replace_without_path_takes_dotted_keys_and_extension_uris() {
    let user = patched(
        user(),
        json!([{"op": "Replace", "value": {
            "active": "False",
            "name.givenName": "Babs",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            ENTERPRISE: {"department": "Tours"}
        }}]),
    );
    assert_eq!(
        user["active"], "False",
        "the string is the caller's to read as a boolean"
    );
    assert_eq!(
        user["name"],
        json!({"givenName": "Babs", "familyName": "Jensen"})
    );
    assert_eq!(
        user[ENTERPRISE],
        json!({"employeeNumber": "701984", "department": "Tours"})
    );
}

#[test]
fn a_value_path_writes_the_matching_value_and_makes_it_when_missing() {
    let user = patched(
        user(),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"},
            {"op": "add", "path": "emails[type eq \"home\"].value", "value": "babs@home.example"}
        ]),
    );
    assert_eq!(
        user["emails"],
        json!([
            {"value": "babs@example.com", "type": "work", "primary": true},
            {"type": "home", "value": "babs@home.example"}
        ])
    );
    let removed = patched(
        user.as_object().unwrap().clone(),
        json!([{"op": "remove", "path": "emails[type eq \"HOME\"]"}]),
    );
    assert_eq!(
        removed["emails"],
        json!([{"value": "babs@example.com", "type": "work", "primary": true}]),
        "type compares without case"
    );
}

#[test]
fn sub_attributes_and_whole_attributes_are_added_replaced_and_removed() {
    let user = patched(
        user(),
        json!([
            {"op": "add", "path": "name.middleName", "value": "Ann"},
            {"op": "replace", "path": "USERNAME", "value": "babs"},
            {"op": "remove", "path": "name.familyName"},
            {"op": "add", "path": "title", "value": "Guide"}
        ]),
    );
    assert_eq!(user["userName"], "babs", "the key keeps its case");
    assert!(user.get("USERNAME").is_none());
    assert_eq!(
        user["name"],
        json!({"givenName": "Barbara", "middleName": "Ann"})
    );
    assert_eq!(user["title"], "Guide");
    let emptied = patched(
        user.as_object().unwrap().clone(),
        json!([{"op": "remove", "path": "emails"}, {"op": "remove", "path": "nickName"}]),
    );
    assert!(emptied.get("emails").is_none());
}

#[test]
fn members_are_added_once_removed_both_ways_and_replaced_whole() {
    let added = patched(
        group(&["a"]),
        json!([{"op": "add", "path": "members", "value": [
            {"value": "a"}, {"value": "b", "$ref": null}, {"value": "c", "display": "Carl"}
        ]}]),
    );
    assert_eq!(member_ids(&added), ["a", "b", "c"]);
    // Entra ID: a value path per member.
    let by_filter = patched(
        added.as_object().unwrap().clone(),
        json!([{"op": "remove", "path": "members[value eq \"b\"]"}]),
    );
    assert_eq!(member_ids(&by_filter), ["a", "c"]);
    // Okta and others: the members to remove as the value.
    let by_value = patched(
        added.as_object().unwrap().clone(),
        json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "c"}]}]),
    );
    assert_eq!(member_ids(&by_value), ["b"]);
    let all_gone = patched(
        added.as_object().unwrap().clone(),
        json!([{"op": "remove", "path": "members"}]),
    );
    assert!(member_ids(&all_gone).is_empty());
    let replaced = patched(
        added.as_object().unwrap().clone(),
        json!([{"op": "replace", "path": "members", "value": [{"value": "d"}]}]),
    );
    assert_eq!(member_ids(&replaced), ["d"]);
    // A single member object is one value of the list.
    let single = patched(
        group(&[]),
        json!([{"op": "add", "path": "members", "value": {"value": "e"}}]),
    );
    assert_eq!(member_ids(&single), ["e"]);
    // Removing a member that is not there changes nothing.
    let absent = patched(
        group(&["a"]),
        json!([{"op": "remove", "path": "members[value eq \"zzz\"]"}]),
    );
    assert_eq!(member_ids(&absent), ["a"]);
}

#[test]
fn a_value_path_whose_filter_cannot_make_a_value_is_no_target() {
    let operations = parse_patch(&json!({"Operations": [
        {"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "work"}
    ]}))
    .unwrap();
    let error = apply_patch(&mut user(), &operations, &ATTRIBUTES).unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::NoTarget));
    assert_eq!(error.status, 400);
}

#[test]
fn a_path_naming_an_extension_whole_merges_into_it_or_removes_it() {
    let mut with_extension = user();
    with_extension.insert(
        ENTERPRISE.into(),
        json!({"department": "Tours", "division": "Parks"}),
    );
    let merged = patched(
        with_extension.clone(),
        json!([{"op": "add", "path": ENTERPRISE, "value": {"employeeNumber": "701984"}},
               {"op": "Replace", "path": ENTERPRISE.to_uppercase(), "value": {"department": "Rides"}}]),
    );
    assert_eq!(
        merged[ENTERPRISE],
        json!({"department": "Rides", "division": "Parks", "employeeNumber": "701984"})
    );
    let removed = patched(
        with_extension,
        json!([{"op": "remove", "path": ENTERPRISE}]),
    );
    assert!(removed.get(ENTERPRISE).is_none(), "{removed}");
    assert_eq!(removed["userName"], "bjensen");

    let mut resource = user();
    let operations = parse_patch(&json!({"Operations": [
        {"op": "add", "path": ENTERPRISE, "value": "Tours"}
    ]}))
    .unwrap();
    let refused = apply_patch(&mut resource, &operations, &ATTRIBUTES).unwrap_err();
    assert_eq!(refused.scim_type, Some(ScimType::InvalidValue));
}
