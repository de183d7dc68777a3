//! Reading and validating bulk-provisioning input (`cadre_provisioning::input`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cadre_domain::{Email, ExternalId, Name};
use cadre_provisioning::input::{
    Format, InputErrors, Mode, RowError, UserGroupRow, UserRow, read_user_groups, read_users,
};

fn id(value: &str) -> ExternalId {
    ExternalId::parse(value).unwrap()
}

fn name(value: &str) -> Name {
    Name::parse(value).unwrap()
}

fn err(row: u64, column: Option<&str>, reason: &str) -> RowError {
    RowError {
        row,
        column: column.map(str::to_owned),
        reason: reason.to_owned(),
    }
}

fn users(input: &str, format: Format, mode: Mode) -> Result<Vec<UserRow>, InputErrors> {
    read_users(input.as_bytes(), format, mode)
}

fn groups(input: &str, format: Format, mode: Mode) -> Result<Vec<UserGroupRow>, InputErrors> {
    read_user_groups(input.as_bytes(), format, mode)
}

fn user_errors(input: &str, format: Format, mode: Mode) -> Vec<RowError> {
    users(input, format, mode)
        .expect_err("input should be refused")
        .0
}

fn group_errors(input: &str, format: Format, mode: Mode) -> Vec<RowError> {
    groups(input, format, mode)
        .expect_err("input should be refused")
        .0
}

/// The same rows with the format-specific row numbers removed.
fn without_rows<R: Clone>(rows: &[R], set_row: fn(&mut R)) -> Vec<R> {
    rows.iter()
        .cloned()
        .map(|mut r| (set_row(&mut r), r).1)
        .collect()
}

const USERS_CSV: &str = "\
user_id,firstname,lastname,email,auth_id,user_groups
jdoe,John,Doe,John.Doe@Example.org,auth0|123,g2|g1|g2
asmith,,,a.smith@example.org,,
";

const USERS_JSON: &str = r#"[
  {"user_id": "jdoe", "firstname": "John", "lastname": "Doe", "email": "John.Doe@Example.org",
   "auth_id": "auth0|123", "user_groups": ["g2", "g1", "g2"]},
  {"email": "a.smith@example.org", "user_id": "asmith", "firstname": null, "lastname": "",
   "auth_id": null}
]"#;

const USERS_JSONL: &str = r#"{"user_id": "jdoe", "firstname": "John", "lastname": "Doe", "email": "John.Doe@Example.org", "auth_id": "auth0|123", "user_groups": ["g2", "g1", "g2"]}

{"user_id": "asmith", "firstname": "", "lastname": null, "email": "a.smith@example.org", "auth_id": "", "user_groups": null}
"#;

#[test]
fn valid_users_read_the_same_from_every_format() {
    let csv = users(USERS_CSV, Format::Csv, Mode::Full).unwrap();
    let expected = vec![
        UserRow {
            row: 2,
            user_id: id("jdoe"),
            firstname: Some(name("John")),
            lastname: Some(name("Doe")),
            email: Some(Email::parse("john.doe@example.org").unwrap()),
            auth_id: Some("auth0|123".to_owned()),
            user_groups: vec![id("g1"), id("g2")],
            active: true,
            username: None,
            employment: None,
            disabled: false,
        },
        UserRow {
            row: 3,
            user_id: id("asmith"),
            firstname: None,
            lastname: None,
            email: Some(Email::parse("a.smith@example.org").unwrap()),
            auth_id: None,
            user_groups: vec![],
            active: true,
            username: None,
            employment: None,
            disabled: false,
        },
    ];
    assert_eq!(csv, expected);

    let json = users(USERS_JSON, Format::Json, Mode::Full).unwrap();
    let jsonl = users(USERS_JSONL, Format::JsonLines, Mode::Full).unwrap();
    assert_eq!(json.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        jsonl.iter().map(|r| r.row).collect::<Vec<_>>(),
        [1, 3],
        "blank line skipped"
    );
    let strip = |r: &mut UserRow| r.row = 0;
    assert_eq!(without_rows(&json, strip), without_rows(&csv, strip));
    assert_eq!(without_rows(&jsonl, strip), without_rows(&csv, strip));
}

#[test]
fn valid_groups_read_the_same_from_every_format() {
    let csv = "user_group_name,user_group_id,parent_user_groups\n\
               Sales,sales,emea|all\n\
               ,all,\n";
    let json = r#"[{"user_group_id": "sales", "user_group_name": "Sales",
                    "parent_user_groups": ["emea", "all", "emea"]},
                   {"user_group_id": "all", "user_group_name": null}]"#;
    let jsonl = "{\"user_group_id\": \"sales\", \"user_group_name\": \" Sales \", \
                 \"parent_user_groups\": [\"all\", \"emea\"]}\n\
                 {\"user_group_id\": \"all\", \"user_group_name\": \"\", \"parent_user_groups\": []}";
    let csv = groups(csv, Format::Csv, Mode::Full).unwrap();
    let expected = vec![
        UserGroupRow {
            row: 2,
            user_group_id: id("sales"),
            user_group_name: name("Sales"),
            parent_user_groups: vec![id("all"), id("emea")],
            active: true,
        },
        UserGroupRow {
            row: 3,
            user_group_id: id("all"),
            user_group_name: name("all"),
            parent_user_groups: vec![],
            active: true,
        },
    ];
    assert_eq!(csv, expected);
    let strip = |r: &mut UserGroupRow| r.row = 0;
    for (input, format) in [(json, Format::Json), (jsonl, Format::JsonLines)] {
        let rows = groups(input, format, Mode::Full).unwrap();
        assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            without_rows(&rows, strip),
            without_rows(&csv, strip),
            "{format:?}"
        );
    }
}

#[test]
fn format_from_path() {
    assert_eq!(
        Format::from_path(Path::new("in/users.CSV")),
        Some(Format::Csv)
    );
    assert_eq!(
        Format::from_path(Path::new("users.json")),
        Some(Format::Json)
    );
    assert_eq!(
        Format::from_path(Path::new("users.jsonl")),
        Some(Format::JsonLines)
    );
    assert_eq!(
        Format::from_path(Path::new("users.NDJSON")),
        Some(Format::JsonLines)
    );
    assert_eq!(Format::from_path(Path::new("users.txt")), None);
    assert_eq!(Format::from_path(Path::new("csv")), None);
}

#[test]
fn unknown_columns_are_reported_once_for_csv_and_per_row_for_json() {
    let csv = "user_id,firstname,lastname,email,auth_id,nickname\n\
               a,,,a@example.org,,x\n\
               b,,,b@example.org,,y\n";
    let errors = user_errors(csv, Format::Csv, Mode::Full);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].row, errors[0].column.as_deref()),
        (1, Some("nickname"))
    );
    assert!(
        errors[0].reason.starts_with("unknown column"),
        "{}",
        errors[0].reason
    );

    let jsonl = "{\"user_id\": \"a\", \"firstname\": null, \"lastname\": null, \
                 \"email\": \"a@example.org\", \"auth_id\": null, \"nick\": 1}\n\
                 {\"user_id\": \"b\", \"firstname\": null, \"lastname\": null, \
                 \"email\": \"b@example.org\", \"auth_id\": null, \"nick\": 2}";
    let errors = user_errors(jsonl, Format::JsonLines, Mode::Full);
    let at: Vec<_> = errors
        .iter()
        .map(|e| (e.row, e.column.as_deref()))
        .collect();
    assert_eq!(at, [(1, Some("nick")), (2, Some("nick"))]);
}

#[test]
fn missing_required_columns() {
    // CSV: reported once against the header, not again on every row.
    let csv = "user_id,firstname,email,auth_id\na,,a@example.org,\nb,,b@example.org,\n";
    assert_eq!(
        user_errors(csv, Format::Csv, Mode::Full),
        [err(1, Some("lastname"), "required column is missing")]
    );
    let csv = "user_group_name\nSales\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Full),
        [err(1, Some("user_group_id"), "required column is missing")]
    );
    // JSON: per row; user_groups / parent_user_groups may be omitted, nothing else.
    let json = r#"[{"user_id": "a", "firstname": null, "lastname": null, "auth_id": null},
                   {"user_group_id": "x"}]"#;
    assert_eq!(
        user_errors(json, Format::Json, Mode::Full),
        [
            err(1, Some("email"), "required column is missing"),
            err(
                2,
                Some("user_group_id"),
                "unknown column; the columns are user_id, firstname, lastname, email, auth_id, user_groups"
            ),
            err(2, Some("user_id"), "required column is missing"),
            err(2, Some("firstname"), "required column is missing"),
            err(2, Some("lastname"), "required column is missing"),
            err(2, Some("email"), "required column is missing"),
            err(2, Some("auth_id"), "required column is missing"),
        ]
    );
    assert_eq!(
        group_errors(r#"[{"user_group_id": "x"}]"#, Format::Json, Mode::Full),
        [err(
            1,
            Some("user_group_name"),
            "required column is missing"
        )]
    );
    // Incremental loads need is_active.
    assert_eq!(
        group_errors(
            "user_group_id,user_group_name\nx,\n",
            Format::Csv,
            Mode::Incremental
        ),
        [err(1, Some("is_active"), "required column is missing")]
    );
}

#[test]
fn is_active_is_refused_in_full_loads() {
    let csv = "user_group_id,user_group_name,is_active\nx,X,true\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Full),
        [err(
            1,
            Some("is_active"),
            "is only allowed in incremental loads"
        )]
    );
    let json = r#"[{"user_group_id": "x", "user_group_name": "X", "is_active": true}]"#;
    assert_eq!(
        group_errors(json, Format::Json, Mode::Full),
        [err(
            1,
            Some("is_active"),
            "is only allowed in incremental loads"
        )]
    );
    let rows = groups(csv, Format::Csv, Mode::Incremental).unwrap();
    assert!(rows[0].active);
}

#[test]
fn bad_ids_name_their_row_and_column() {
    let long = "a".repeat(256);
    let csv = format!(
        "user_id,firstname,lastname,email,auth_id,user_groups\n\
         .hidden,,,a@example.org,,\n\
         has space,,,b@example.org,,\n\
         {long},,,c@example.org,,\n\
         ok,,,d@example.org,,g1|.g2\n\
         {},,,e@example.org,,\n",
        "a".repeat(255)
    );
    let errors = user_errors(&csv, Format::Csv, Mode::Full);
    let at: Vec<_> = errors
        .iter()
        .map(|e| (e.row, e.column.as_deref()))
        .collect();
    assert_eq!(
        at,
        [
            (2, Some("user_id")),
            (3, Some("user_id")),
            (4, Some("user_id")),
            (5, Some("user_groups"))
        ]
    );
    assert_eq!(errors[0].reason, r#"".hidden" must not start with '.'"#);
    assert!(
        errors[1].reason.contains("contains ' '"),
        "{}",
        errors[1].reason
    );
    assert!(
        errors[2].reason.ends_with("must be at most 255 characters"),
        "{}",
        errors[2].reason
    );
    assert_eq!(errors[3].reason, r#"".g2" must not start with '.'"#);

    let json = r#"[{"user_group_id": "", "user_group_name": "X"},
                   {"user_group_id": 7, "user_group_name": "Y", "parent_user_groups": ["ok", 3]}]"#;
    assert_eq!(
        group_errors(json, Format::Json, Mode::Full),
        [
            err(1, Some("user_group_id"), "is required"),
            err(2, Some("user_group_id"), "must be a string, got a number"),
            err(
                2,
                Some("parent_user_groups"),
                "must contain ids (strings), got a number"
            ),
        ]
    );
}

#[test]
fn emails_are_required_and_validated_for_active_users() {
    let csv = "user_id,firstname,lastname,email,auth_id\n\
               a,,,not-an-email,\n\
               b,,,,\n";
    assert_eq!(
        user_errors(csv, Format::Csv, Mode::Full),
        [
            err(2, Some("email"), r#""not-an-email" has no '@'"#),
            err(
                3,
                Some("email"),
                "is required: a cadre user needs an email address"
            ),
        ]
    );
}

#[test]
fn inactive_users_only_need_a_valid_id() {
    let csv = "user_id,firstname,lastname,email,auth_id,user_groups,is_active\n\
               gone,Ann,,not-an-email,,.bad|g1,false\n\
               .gone,,,,,,no\n";
    assert_eq!(
        user_errors(csv, Format::Csv, Mode::Incremental),
        [err(
            3,
            Some("user_id"),
            r#"".gone" must not start with '.'"#
        )]
    );
    let rows = users(
        &csv.replace(".gone", "gone2"),
        Format::Csv,
        Mode::Incremental,
    )
    .unwrap();
    assert_eq!(
        rows[0].firstname,
        Some(name("Ann")),
        "valid values are kept"
    );
    assert_eq!(rows[0].email, None, "invalid values are dropped");
    assert_eq!(rows[0].user_groups, vec![]);
    assert!(!rows[0].active && !rows[1].active);
}

#[test]
fn is_active_is_a_lax_boolean() {
    let jsonl = [
        r#"{"user_group_id": "a", "user_group_name": null, "is_active": "yes"}"#,
        r#"{"user_group_id": "b", "user_group_name": null, "is_active": 1}"#,
        r#"{"user_group_id": "c", "user_group_name": null, "is_active": " TRUE "}"#,
        r#"{"user_group_id": "d", "user_group_name": null, "is_active": false}"#,
        r#"{"user_group_id": "e", "user_group_name": null, "is_active": 0}"#,
        r#"{"user_group_id": "f", "user_group_name": null, "is_active": "off"}"#,
        r#"{"user_group_id": "g", "user_group_name": null, "is_active": "n"}"#,
    ]
    .join("\n");
    let rows = groups(&jsonl, Format::JsonLines, Mode::Incremental).unwrap();
    let active: Vec<bool> = rows.iter().map(|r| r.active).collect();
    assert_eq!(active, [true, true, true, false, false, false, false]);

    let csv = "user_group_id,user_group_name,is_active\na,,not_a_boolean\nb,,\nc,,2\nd,,t\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Incremental),
        [
            err(
                2,
                Some("is_active"),
                r#"must be a boolean (true or false), got "not_a_boolean""#
            ),
            err(3, Some("is_active"), "is required: must be true or false"),
            err(
                4,
                Some("is_active"),
                r#"must be a boolean (true or false), got "2""#
            ),
        ]
    );
    let json = r#"[{"user_group_id": "a", "user_group_name": null, "is_active": 2},
                   {"user_group_id": "b", "user_group_name": null, "is_active": null}]"#;
    assert_eq!(
        group_errors(json, Format::Json, Mode::Incremental),
        [
            err(
                1,
                Some("is_active"),
                r#"must be a boolean (true or false), got "2""#
            ),
            err(2, Some("is_active"), "is required: must be true or false"),
        ]
    );
}

#[test]
fn group_name_defaults_to_the_id_and_empty_parents_are_empty() {
    let json = r#"[{"user_group_id": "a", "user_group_name": null, "parent_user_groups": null},
                   {"user_group_id": "b", "user_group_name": "", "parent_user_groups": ""},
                   {"user_group_id": "c", "user_group_name": "  Cee  ", "parent_user_groups": []},
                   {"user_group_id": "d", "user_group_name": "Dee"}]"#;
    let rows = groups(json, Format::Json, Mode::Full).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.user_group_name.as_str()).collect();
    assert_eq!(names, ["a", "b", "Cee", "Dee"]);
    assert!(rows.iter().all(|r| r.parent_user_groups.is_empty()));
}

#[test]
fn list_columns_must_be_arrays_without_empty_entries() {
    let json = r#"[{"user_id": "a", "firstname": null, "lastname": null, "email": "a@example.org",
                    "auth_id": null, "user_groups": "g1|g2"}]"#;
    assert_eq!(
        user_errors(json, Format::Json, Mode::Full),
        [err(
            1,
            Some("user_groups"),
            "must be an array of ids, got a string"
        )]
    );
    let csv = "user_group_id,user_group_name,parent_user_groups\nx,,g1||g2\ny,,g1|\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Full),
        [
            err(2, Some("parent_user_groups"), "must not contain empty ids"),
            err(3, Some("parent_user_groups"), "must not contain empty ids"),
        ]
    );
}

#[test]
fn duplicate_ids_across_rows() {
    let csv = "user_group_id,user_group_name\nx,One\ny,Two\nx,Three\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Full),
        [err(
            4,
            Some("user_group_id"),
            r#"user_group_id "x" also on row 2"#
        )]
    );
    let csv = "user_id,firstname,lastname,email,auth_id,is_active\n\
               a,,,a@example.org,,false\n\
               a,,,a@example.org,,true\n\
               b,,,b@example.org,,true\n\
               b,,,,,false\n";
    assert_eq!(
        user_errors(csv, Format::Csv, Mode::Incremental),
        [
            err(
                3,
                Some("user_id"),
                r#"user_id "a" is both active (row 3) and inactive (row 2)"#
            ),
            err(
                5,
                Some("user_id"),
                r#"user_id "b" is both active (row 4) and inactive (row 5)"#
            ),
        ]
    );
}

#[test]
fn duplicate_emails_among_active_users() {
    let csv = "user_id,firstname,lastname,email,auth_id,is_active\n\
               a,,,Same@Example.org,,true\n\
               b,,,same@example.org,,true\n\
               c,,,same@example.org,,false\n";
    assert_eq!(
        user_errors(csv, Format::Csv, Mode::Incremental),
        [err(
            3,
            Some("email"),
            r#"email "same@example.org" also on row 2"#
        )]
    );
}

#[test]
fn duplicate_group_names_differing_only_by_case() {
    let csv = "user_group_id,user_group_name\nsales,Sales\nsales2,SALES\nother,\nOTHER,\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Full),
        [
            err(
                3,
                Some("user_group_name"),
                r#"user_group_name "SALES" also on row 2 as "Sales" (compared ignoring case)"#
            ),
            // Ids are case-sensitive, but the names defaulted from them are compared without case.
            err(
                5,
                Some("user_group_name"),
                r#"user_group_name "OTHER" also on row 4 as "other" (compared ignoring case)"#
            ),
        ]
    );
}

#[test]
fn all_errors_are_reported_together_in_input_order() {
    let csv = "user_id,firstname,lastname,email,auth_id,user_groups,is_active\n\
               a,,,a@example.org,,,maybe\n\
               .b,,,b@example.org,,g|g,true\n\
               c,,,a@example.org,,,yes\n\
               d,,,,,x||y,1\n\
               c,,,c@example.org,,,0\n";
    let errors = users(csv, Format::Csv, Mode::Incremental).unwrap_err();
    assert_eq!(
        errors.0,
        [
            err(
                2,
                Some("is_active"),
                r#"must be a boolean (true or false), got "maybe""#
            ),
            err(3, Some("user_id"), r#"".b" must not start with '.'"#),
            err(
                5,
                Some("email"),
                "is required: a cadre user needs an email address"
            ),
            err(5, Some("user_groups"), "must not contain empty ids"),
            err(
                6,
                Some("user_id"),
                r#"user_id "c" is both active (row 4) and inactive (row 6)"#
            ),
        ]
    );
    insta::assert_snapshot!(errors.to_string());
}

#[test]
fn csv_rows_are_physical_lines_starting_at_two() {
    // A quoted cell spanning two lines: the next record starts on line 4.
    let csv = "user_group_id,user_group_name\nx,\"Two\nLines\"\n.y,\n";
    let errors = group_errors(csv, Format::Csv, Mode::Full);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (errors[0].row, errors[0].column.as_deref()),
        (2, Some("user_group_name"))
    );
    assert_eq!(
        errors[0].reason,
        "must not contain invisible, control or format characters (found U+000A)"
    );
    assert_eq!(
        (errors[1].row, errors[1].column.as_deref()),
        (4, Some("user_group_id"))
    );
}

#[test]
fn malformed_input_stops_reading_at_the_faulty_row() {
    let csv = "user_group_id,user_group_name\na,\nb,B,extra\nc,\n";
    assert_eq!(
        group_errors(csv, Format::Csv, Mode::Full),
        [err(3, None, "has 3 fields, but the header has 2")]
    );

    let errors = group_errors(
        r#"[{"user_group_id": "a", "user_group_name": null},"#,
        Format::Json,
        Mode::Full,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].row, errors[0].column.as_deref()), (0, None));
    assert!(
        errors[0].reason.starts_with("invalid JSON: "),
        "{}",
        errors[0].reason
    );
    assert!(
        errors[0].reason.contains("line 1 column"),
        "{}",
        errors[0].reason
    );

    let jsonl = "{\"user_group_id\": \"a\", \"user_group_name\": null}\n\
                 [1, 2]\n\
                 {\"user_group_id\": \"a\", \"user_group_name\": \n\
                 {\"user_group_id\": \".never-read\", \"user_group_name\": null}\n";
    let errors = group_errors(jsonl, Format::JsonLines, Mode::Full);
    let at: Vec<_> = errors
        .iter()
        .map(|e| (e.row, e.column.as_deref()))
        .collect();
    assert_eq!(at, [(2, None), (3, None)], "{errors:?}");
    assert_eq!(errors[0].reason, "must be a JSON object, got an array");
    assert!(
        errors[1].reason.starts_with("invalid JSON: "),
        "{}",
        errors[1].reason
    );

    assert_eq!(
        group_errors(r#"{"user_group_id": "a"}"#, Format::Json, Mode::Full)[0].row,
        0,
        "a JSON document that is not an array"
    );
}

#[test]
fn errors_display_one_per_line() {
    let errors = InputErrors(vec![err(3, Some("email"), "bad"), err(4, None, "worse")]);
    assert_eq!(errors.to_string(), "row 3, column email: bad\nrow 4: worse");
}

#[test]
fn an_auth_id_with_control_characters_is_refused() {
    let input = r#"{"user_id": "u1", "firstname": null, "lastname": null, "email": "u1@example.org", "auth_id": "sso\u0000x"}"#;
    assert_eq!(
        user_errors(input, Format::JsonLines, Mode::Full),
        [err(
            1,
            Some("auth_id"),
            "must not contain control characters"
        )]
    );
}

mod any_input {
    use cadre_provisioning::input::{read_user_groups, read_users};
    use cadre_provisioning::{Format, Mode};
    use proptest::prelude::*;

    /// Bytes that look a little like a load: header words, separators, quotes, brackets, and
    /// anything else.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"user_id,firstname,lastname,email,auth_id,user_groups,is_active\n".to_vec()),
            Just(b"user_group_id,user_group_name,parent_user_groups\n".to_vec()),
            Just(b",".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"|".to_vec()),
            Just(b"[{\"user_id\": ".to_vec()),
            Just(b"}]".to_vec()),
            Just(b"true".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..16),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn no_input_makes_a_reader_panic(bytes in input()) {
            for format in [Format::Csv, Format::Json, Format::JsonLines] {
                for mode in [Mode::Full, Mode::Incremental] {
                    // Either rows or the bad ones, never a panic.
                    let _ = read_users(bytes.as_slice(), format, mode);
                    let _ = read_user_groups(bytes.as_slice(), format, mode);
                }
            }
        }
    }
}
