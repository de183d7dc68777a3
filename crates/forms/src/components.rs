//! The components of pydantic-forms' `validators` beyond plain fields: literals, accept
//! checklists, callouts, markdown, migration summaries, displayed subscriptions, timestamps and
//! contact persons, rendered as pydantic-forms 2.9 renders them.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::page::{Choices, Field, FieldKind, FormPage};

/// The value of an accept field once every item is confirmed.
pub(crate) const ACCEPTED: &str = "ACCEPTED";
/// The value of an accept field still being worked through.
pub(crate) const INCOMPLETE: &str = "INCOMPLETE";

/// How an item of an accept checklist is shown (pydantic-forms' `AcceptItemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptItem {
    /// Information.
    Info,
    /// A label.
    Label,
    /// A warning.
    Warning,
    /// A link.
    Url,
    /// A box to tick.
    Checkbox,
    /// A box to tick, under the one before.
    SubCheckbox,
    /// A box that may stay empty.
    OptionalCheckbox,
    /// A box that may stay empty, under the one before.
    OptionalSubCheckbox,
    /// Skipped.
    Skip,
    /// A value.
    Value,
    /// Space.
    Margin,
}

impl AcceptItem {
    /// The name pydantic-forms gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Label => "label",
            Self::Warning => "warning",
            Self::Url => "url",
            Self::Checkbox => "checkbox",
            Self::SubCheckbox => ">checkbox",
            Self::OptionalCheckbox => "checkbox?",
            Self::OptionalSubCheckbox => ">checkbox?",
            Self::Skip => "skip",
            Self::Value => "value",
            Self::Margin => "margin",
        }
    }
}

/// How a timestamp picker looks and what it allows (pydantic-forms' `timestamp()`); the
/// default is a date and time picker without bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// Whether the time is chosen too, not only the date.
    pub show_time_select: bool,
    /// The picker's locale.
    pub locale: Option<String>,
    /// The earliest instant, in seconds since the epoch (checked: `ge`).
    pub min: Option<i64>,
    /// The latest instant, in seconds since the epoch (checked: `le`).
    pub max: Option<i64>,
    /// How the date is shown.
    pub date_format: Option<String>,
    /// How the time is shown.
    pub time_format: Option<String>,
}

impl Default for Timestamp {
    fn default() -> Self {
        Self {
            show_time_select: true,
            locale: None,
            min: None,
            max: None,
            date_format: None,
            time_format: None,
        }
    }
}

impl Field {
    /// One of a few fixed values (pydantic's `Literal["a", "b"]`); a single value renders as
    /// `const`.
    pub fn literal(name: &str, values: &[&str]) -> Self {
        Self::with_kind(name, FieldKind::Literal(Choices::plain(name, values)))
    }

    /// A checklist confirmed by answering `ACCEPTED` (pydantic-forms' `Accept`).
    pub fn accept(name: &str, items: &[(&str, AcceptItem)]) -> Self {
        let items = items
            .iter()
            .map(|(text, item)| ((*text).to_owned(), *item))
            .collect();
        Self::with_kind(name, FieldKind::Accept(items))
    }

    /// A callout box (pydantic-forms' `callout()`): `message_type` is `primary`, `success`,
    /// `warning`, `danger` or `accent`; the icon is `info`.
    pub fn callout(
        name: &str,
        header: Option<&str>,
        message: Option<&str>,
        message_type: &str,
    ) -> Self {
        let content = json!({
            "header": header,
            "message": message,
            "icon_type": "info",
            "message_type": message_type,
        });
        Self::panel(name, "CalloutValue", "callout", content)
    }

    /// A block of Markdown (pydantic-forms' `markdown()`): `color` is `primary`, `success`,
    /// `warning`, `danger` or `accent`.
    pub fn markdown(name: &str, content: &str, color: &str) -> Self {
        let content = json!({"content": content, "color": color});
        Self::panel(name, "MarkdownValue", "markdown", content)
    }

    /// A summary table (pydantic-forms' `migration_summary()`), e.g.
    /// `{"headers": [...], "columns": [[...]]}`.
    pub fn migration_summary(name: &str, data: Value) -> Self {
        let shown = json!({"data": data});
        Self::panel(name, "MigrationSummaryValue", "summary", Value::Null)
            .extra("extraProperties", shown.clone())
            .extra("uniforms", shown)
    }

    fn panel(name: &str, model: &'static str, format: &'static str, content: Value) -> Self {
        Self::with_kind(name, FieldKind::Panel { model, format }).default(content)
    }

    /// A subscription shown by its id (pydantic-forms' `DisplaySubscription`).
    pub fn display_subscription(name: &str, id: Uuid) -> Self {
        Self::with_kind(name, FieldKind::DisplaySubscription).default(json!(id))
    }

    /// A date (and time) picker answered in seconds since the epoch (pydantic-forms'
    /// `timestamp()`): a whole number within `min` and `max`.
    pub fn timestamp(name: &str, options: &Timestamp) -> Self {
        let shown = json!({
            "dateFormat": options.date_format,
            "locale": options.locale,
            "max": options.max,
            "min": options.min,
            "showTimeSelect": options.show_time_select,
            "timeFormat": options.time_format,
        });
        let mut field = Self::integer(name)
            .extra("extraProperties", shown.clone())
            .extra("format", json!("timestamp"))
            .extra("type", json!("number"))
            .extra("uniforms", shown);
        if let Some(min) = options.min {
            field = field.ge(min);
        }
        if let Some(max) = options.max {
            field = field.le(max);
        }
        field
    }
}

/// pydantic-forms' `ContactPerson`, a nested model: a name, an email address and an optional
/// phone number. Use it as [`Field::model`] or in a list ([`crate::ListItem::model`]).
pub fn contact_person() -> FormPage {
    FormPage::model("ContactPerson")
        .field(Field::string("name").format("contactPersonName"))
        .field(Field::string("email").format("email").check(email))
        .field(Field::string("phone").default(json!("")))
}

fn email(value: &Value) -> Result<(), String> {
    cadre_domain::Email::parse(value.as_str().unwrap_or_default())
        .map(|_| ())
        .map_err(|error| format!("value is not a valid email address: {error}"))
}
