//! RFC 7644 §3.4.2.2's examples, and how resources match them.

use cadre_scim::{
    AttrPath, Filter, MAX_FILTER_LENGTH, PatchPath, ScimType, matches, parse_filter,
    parse_patch_path,
};
use serde_json::{Value, json};

/// Every filter RFC 7644 §3.4.2.2 gives as an example.
const EXAMPLES: [&str; 17] = [
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    "title pr",
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and (emails.type eq "work")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
];

#[test]
fn the_rfcs_examples_parse_and_read_back_the_same() {
    for filter in EXAMPLES {
        let parsed = parse_filter(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
        let written = parsed.to_string();
        assert_eq!(
            parse_filter(&written).unwrap(),
            parsed,
            "{filter} -> {written}"
        );
    }
}

#[test]
fn operators_and_keywords_are_read_in_any_case_and_and_binds_tighter_than_or() {
    let upper = parse_filter(r#"UserName EQ "a" OR title PR AND NOT (active Eq false)"#).unwrap();
    let lower = parse_filter(r#"UserName eq "a" or (title pr and not (active eq false))"#).unwrap();
    assert_eq!(upper, lower);
    assert!(matches!(upper, Filter::Or(..)));
    assert!(
        parse_filter("notes pr").is_ok(),
        "an attribute may start with `not`"
    );
}

#[test]
fn refusals_are_scim_errors_of_their_kind() {
    for filter in [
        "userName",
        r#"userName eq"#,
        r#"userName eq "open"#,
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        r#"userName eq "a" extra"#,
        r#"emails[type eq "work""#,
        "",
    ] {
        let error = parse_filter(filter).unwrap_err();
        assert_eq!(
            (error.status, error.scim_type),
            (400, Some(ScimType::InvalidFilter)),
            "{filter}"
        );
    }
    let deep = format!("{}title pr{}", "not (".repeat(100), ")".repeat(100));
    assert!(parse_filter(&deep).is_err(), "nesting is bounded");
    let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LENGTH));
    assert!(
        parse_filter(&long)
            .unwrap_err()
            .detail
            .contains("longer than")
    );
    assert_eq!(
        parse_patch_path("emails[").unwrap_err().scim_type,
        Some(ScimType::InvalidPath)
    );
}

#[test]
fn patch_paths_name_an_attribute_its_values_and_their_sub_attribute() {
    let PatchPath::Value(path) = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap()
    else {
        panic!("a value path");
    };
    assert_eq!(path.attr.name, "emails");
    assert_eq!(path.sub_attr.as_deref(), Some("value"));
    let PatchPath::Attr(extension) = parse_patch_path(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    )
    .unwrap() else {
        panic!("an attribute path");
    };
    assert_eq!(
        extension.uri.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(
        (extension.name.as_str(), extension.sub_attr.as_deref()),
        ("manager", Some("value"))
    );
}

fn bjensen() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "bjensen",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

/// `userName` and `emails.value` without case, as the core schema says; `id` with it.
fn case_exact(path: &AttrPath) -> bool {
    path.name.eq_ignore_ascii_case("id") && path.sub_attr.is_none()
}

fn matching(filter: &str) -> bool {
    matches(&parse_filter(filter).unwrap(), &bjensen(), &case_exact)
}

#[test]
fn resources_match_as_the_rfc_describes() {
    for (filter, expected) in [
        (r#"USERNAME eq "BJensen""#, true),
        (r#"userName eq "other""#, false),
        (r#"userName ne "other""#, true),
        (r#"name.familyName co "malley""#, true),
        (r#"userName sw "bj" and userName ew "SEN""#, true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            false,
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#,
            true,
        ),
        ("title pr", true),
        ("nickName pr", false),
        (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
        (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
        (r#"emails co "jensen.org""#, true),
        (r#"emails.type eq "work""#, true),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            true,
        ),
        (
            r#"emails[type eq "home" and value co "@example.com"]"#,
            false,
        ),
        (r#"emails[not (type eq "work")]"#, true),
        (
            r#"userType ne "Employee" and not (emails co "example.com")"#,
            false,
        ),
        ("active eq true", true),
        ("active eq false", false),
        ("active gt true", false),
        ("nickName eq null", true),
        ("title eq null", false),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value sw "2611""#,
            true,
        ),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user""#,
            true,
        ),
    ] {
        assert_eq!(matching(filter), expected, "{filter}");
    }
    let with_id = json!({"id": "AbC"});
    assert!(!matches(
        &parse_filter(r#"id eq "abc""#).unwrap(),
        &with_id,
        &case_exact
    ));
    assert!(matches(
        &parse_filter(r#"id eq "AbC""#).unwrap(),
        &with_id,
        &case_exact
    ));
}

#[test]
fn a_scim_error_has_scims_shape() {
    let error = cadre_scim::ScimError::bad_request(ScimType::InvalidFilter, "no such operator");
    assert_eq!(
        error.body(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "400",
            "scimType": "invalidFilter",
            "detail": "no such operator"
        })
    );
}
