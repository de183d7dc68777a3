//! Properties: no text makes the parsers or the matching panic.

use cadre_scim::{matches, parse_filter, parse_patch_path};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #[test]
    fn no_text_makes_the_parsers_panic(text in any::<String>()) {
        let _ = parse_filter(&text);
        let _ = parse_patch_path(&text);
    }

    #[test]
    fn filter_like_text_parses_or_is_refused_and_matches_without_panicking(
        text in r#"[ a-zA-Z()\[\]".:0-9-]{0,60}"#
    ) {
        if let Ok(filter) = parse_filter(&text) {
            let resource = json!({"userName": "a", "emails": [{"value": "b", "type": "c"}], "n": 1});
            let _ = matches(&filter, &resource, &|_| false);
        }
    }
}
