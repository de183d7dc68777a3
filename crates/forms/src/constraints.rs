//! The constraints pydantic puts on numbers and texts: bounds (`gt`, `ge`, `lt`, `le`,
//! `multiple_of`) and patterns, with their schema keys and pydantic's errors.

use std::fmt;

use serde_json::{Map, Value, json};

/// A bound of a number, kept as it was declared: `gt=0` renders and reports `0`, `le=1000.5`
/// renders `1000.5`, as pydantic does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// A whole number.
    Integer(i64),
    /// A number with a fractional part, or declared as a float.
    Float(f64),
}

impl Limit {
    fn as_f64(self) -> f64 {
        match self {
            Self::Integer(whole) => whole as f64,
            Self::Float(float) => float,
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Integer(whole) => json!(whole),
            Self::Float(float) => json!(float),
        }
    }
}

impl From<i64> for Limit {
    fn from(whole: i64) -> Self {
        Self::Integer(whole)
    }
}

impl From<i32> for Limit {
    fn from(whole: i32) -> Self {
        Self::Integer(whole.into())
    }
}

impl From<u32> for Limit {
    fn from(whole: u32) -> Self {
        Self::Integer(whole.into())
    }
}

impl From<f64> for Limit {
    fn from(float: f64) -> Self {
        Self::Float(float)
    }
}

/// Python's `repr`: `2.0` for a whole float, `0.5`, `5` for an integer.
impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Integer(whole) => write!(f, "{whole}"),
            Self::Float(float) => write!(f, "{float:?}"),
        }
    }
}

/// The bounds of a number, each optional; pydantic's `gt`, `ge`, `lt`, `le` and `multiple_of`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bounds {
    /// Greater than (`exclusiveMinimum`).
    pub gt: Option<Limit>,
    /// Greater than or equal to (`minimum`).
    pub ge: Option<Limit>,
    /// Less than (`exclusiveMaximum`).
    pub lt: Option<Limit>,
    /// Less than or equal to (`maximum`).
    pub le: Option<Limit>,
    /// A multiple of (`multipleOf`).
    pub multiple_of: Option<Limit>,
}

/// A broken bound: pydantic's error type, the words of its message and its `ctx` key.
pub(crate) struct OutOfBounds {
    pub(crate) kind: &'static str,
    words: &'static str,
    pub(crate) ctx_key: &'static str,
    limit: Limit,
    /// Whether the number checked is a float, whose `ctx` pydantic gives as a float.
    float: bool,
}

impl OutOfBounds {
    /// pydantic's message, e.g. `Input should be less than 5`.
    pub(crate) fn message(&self) -> String {
        format!("Input should be {} {}", self.words, self.limit)
    }

    /// The bound for `ctx`: as declared for an integer, as a float for a float (`gt=0` on a
    /// float is `0.0` there, and `0` in the message).
    pub(crate) fn limit(&self) -> Value {
        if self.float {
            json!(self.limit.as_f64())
        } else {
            self.limit.to_json()
        }
    }
}

impl Bounds {
    /// No bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Greater than `limit`.
    pub fn gt(mut self, limit: impl Into<Limit>) -> Self {
        self.gt = Some(limit.into());
        self
    }

    /// Greater than or equal to `limit`.
    pub fn ge(mut self, limit: impl Into<Limit>) -> Self {
        self.ge = Some(limit.into());
        self
    }

    /// Less than `limit`.
    pub fn lt(mut self, limit: impl Into<Limit>) -> Self {
        self.lt = Some(limit.into());
        self
    }

    /// Less than or equal to `limit`.
    pub fn le(mut self, limit: impl Into<Limit>) -> Self {
        self.le = Some(limit.into());
        self
    }

    /// A multiple of `limit`.
    pub fn multiple_of(mut self, limit: impl Into<Limit>) -> Self {
        self.multiple_of = Some(limit.into());
        self
    }

    /// The schema keys of the bounds.
    pub(crate) fn render(&self, schema: &mut Map<String, Value>) {
        let keys = [
            ("exclusiveMinimum", self.gt),
            ("minimum", self.ge),
            ("exclusiveMaximum", self.lt),
            ("maximum", self.le),
            ("multipleOf", self.multiple_of),
        ];
        for (key, limit) in keys {
            if let Some(limit) = limit {
                schema.insert(key.to_owned(), limit.to_json());
            }
        }
    }

    /// Checks a whole number, in pydantic's order: `multiple_of`, `le`, `lt`, `ge`, `gt`.
    pub(crate) fn check_integer(&self, value: i64) -> Result<(), OutOfBounds> {
        let multiple = |m: Limit| match m {
            Limit::Integer(0) => false,
            Limit::Integer(m) => value % m == 0,
            Limit::Float(m) => float_is_multiple(value as f64, m),
        };
        self.check(false, multiple, |limit| match limit {
            Limit::Integer(whole) => value.cmp(&whole),
            Limit::Float(float) => (value as f64).total_cmp(&float),
        })
    }

    /// Checks a number, in pydantic's order: `multiple_of`, `le`, `lt`, `ge`, `gt`.
    pub(crate) fn check_float(&self, value: f64) -> Result<(), OutOfBounds> {
        self.check(
            true,
            |m| float_is_multiple(value, m.as_f64()),
            |limit| value.total_cmp(&limit.as_f64()),
        )
    }

    fn check(
        &self,
        float: bool,
        is_multiple: impl Fn(Limit) -> bool,
        compare: impl Fn(Limit) -> std::cmp::Ordering,
    ) -> Result<(), OutOfBounds> {
        use std::cmp::Ordering::{Greater, Less};
        let broken = |kind, words, ctx_key, limit| OutOfBounds {
            kind,
            words,
            ctx_key,
            limit,
            float,
        };
        if let Some(m) = self.multiple_of.filter(|m| !is_multiple(*m)) {
            return Err(broken("multiple_of", "a multiple of", "multiple_of", m));
        }
        if let Some(le) = self.le.filter(|le| compare(*le) == Greater) {
            return Err(broken("less_than_equal", "less than or equal to", "le", le));
        }
        if let Some(lt) = self.lt.filter(|lt| compare(*lt) != Less) {
            return Err(broken("less_than", "less than", "lt", lt));
        }
        if let Some(ge) = self.ge.filter(|ge| compare(*ge) == Less) {
            return Err(broken(
                "greater_than_equal",
                "greater than or equal to",
                "ge",
                ge,
            ));
        }
        if let Some(gt) = self.gt.filter(|gt| compare(*gt) != Greater) {
            return Err(broken("greater_than", "greater than", "gt", gt));
        }
        Ok(())
    }
}

/// pydantic's test for a float multiple: the remainder is within a billionth of the value of
/// zero or of the divisor (so that `0.3` is a multiple of `0.1`).
fn float_is_multiple(value: f64, divisor: f64) -> bool {
    if divisor == 0.0 {
        return false;
    }
    let remainder = value % divisor;
    let threshold = value.abs() / 1e9;
    remainder.abs() <= threshold || (remainder - divisor).abs() <= threshold
}

/// A regular expression a text must contain a match of, as pydantic's `pattern`: searched,
/// not anchored. pydantic matches with Rust's `regex` and falls back to Python's `re` for
/// look-around; `fancy-regex` does the same in one engine (plain expressions go to `regex`),
/// with a backtracking limit past which a text does not match.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: fancy_regex::Regex,
}

impl Pattern {
    /// Compiles `source`; an invalid expression is the caller's error.
    pub fn new(source: &str) -> Result<Self, fancy_regex::Error> {
        Ok(Self {
            source: source.to_owned(),
            regex: fancy_regex::Regex::new(source)?,
        })
    }

    /// The expression as declared.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `text` contains a match.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_shown_as_python_shows_them() {
        assert_eq!(Limit::from(5).to_string(), "5");
        assert_eq!(Limit::from(2.0).to_string(), "2.0");
        assert_eq!(Limit::from(1000.5).to_string(), "1000.5");
    }

    #[test]
    fn patterns_search_and_may_look_around() {
        let pattern = Pattern::new(r"^(?!\.)[a-z.]+$").unwrap();
        assert!(pattern.is_match("a.b"));
        assert!(!pattern.is_match(".ab"));
        assert!(Pattern::new("[0-9]").unwrap().is_match("abc1"));
        // Catastrophic backtracking stops at the limit and does not match.
        assert!(
            !Pattern::new(r"^(a+)+\1$")
                .unwrap()
                .is_match(&format!("{}b", "a".repeat(64)))
        );
    }

    #[test]
    fn float_multiples_tolerate_rounding() {
        assert!(float_is_multiple(0.3, 0.1));
        assert!(float_is_multiple(-1.5, 0.5));
        assert!(!float_is_multiple(0.25, 0.5));
        assert!(!float_is_multiple(1.0, 0.0));
    }

    #[test]
    fn bounds_are_checked_in_pydantics_order() {
        let bounds = Bounds::new().gt(0).lt(100).multiple_of(5);
        assert_eq!(bounds.check_integer(-3).unwrap_err().kind, "multiple_of");
        assert_eq!(bounds.check_integer(-5).unwrap_err().kind, "greater_than");
        assert_eq!(bounds.check_integer(100).unwrap_err().kind, "less_than");
        assert!(bounds.check_integer(95).is_ok());
        let out = Bounds::new().le(1000.5).check_float(1001.0).unwrap_err();
        assert_eq!(
            (out.kind, out.message().as_str(), out.ctx_key, out.limit()),
            (
                "less_than_equal",
                "Input should be less than or equal to 1000.5",
                "le",
                json!(1000.5)
            )
        );
        let out = Bounds::new().gt(0).check_float(0.0).unwrap_err();
        assert_eq!(
            (out.message().as_str(), out.limit().to_string()),
            ("Input should be greater than 0", "0.0".to_owned())
        );
    }
}
