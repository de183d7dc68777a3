//! Media types of uploads: from the file name, corrected by a sniff of the content.

/// The media type of a file named `name` whose content starts with `head`.
///
/// A recognised binary signature in the content wins (a PNG named `data.json` is a PNG); else
/// the name's extension decides; `None` when neither tells.
pub fn detect(name: &str, head: &[u8]) -> Option<String> {
    if let Some(sniffed) = infer::get(head) {
        return Some(sniffed.mime_type().to_owned());
    }
    mime_guess::from_path(name)
        .first()
        .map(|mime| mime.essence_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_name_decides_for_text_content() {
        assert_eq!(
            detect("data.json", b"{}").as_deref(),
            Some("application/json")
        );
        assert_eq!(detect("rows.csv", b"a,b\n").as_deref(), Some("text/csv"));
        assert_eq!(detect("IMAGE.PNG", PNG).as_deref(), Some("image/png"));
        assert_eq!(detect("README", b"hello"), None);
    }

    #[test]
    fn a_recognised_signature_overrides_the_name() {
        assert_eq!(detect("data.json", PNG).as_deref(), Some("image/png"));
        assert_eq!(detect("noextension", PNG).as_deref(), Some("image/png"));
    }
}
