//! Form pages and their JSON Schema, in the dialect pydantic-forms emits.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value, json};

use crate::ValidationError;
use crate::components::{ACCEPTED, AcceptItem, INCOMPLETE};
use crate::constraints::{Bounds, Limit, Pattern};

/// One option of a choice: the value submitted and the label shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The submitted value.
    pub value: String,
    /// What the user sees; `None` renders the value itself (a plain enum).
    pub label: Option<String>,
}

/// A named set of choices, rendered once under `$defs` and referenced by the fields using it.
/// Cloning one shares its options, and checking an answer against many of them is a lookup.
#[derive(Debug, Clone)]
pub struct Choices {
    name: String,
    options: Arc<Options>,
}

/// The options of a [`Choices`], and the set of their values once an answer was checked
/// against them.
#[derive(Debug)]
struct Options {
    list: Vec<Choice>,
    values: OnceLock<HashSet<String>>,
}

impl PartialEq for Choices {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.options.list == other.options.list
    }
}

impl Eq for Choices {}

impl Choices {
    fn new(name: &str, list: Vec<Choice>) -> Self {
        Self {
            name: name.to_owned(),
            options: Arc::new(Options {
                list,
                values: OnceLock::new(),
            }),
        }
    }

    /// Choices with labels (`options` in the schema), e.g. subscriptions by description.
    pub fn labelled(name: &str, options: impl IntoIterator<Item = (String, String)>) -> Self {
        let list = options
            .into_iter()
            .map(|(value, label)| Choice {
                value,
                label: Some(label),
            })
            .collect();
        Self::new(name, list)
    }

    /// Plain choices: the values are shown as they are.
    pub fn plain(name: &str, values: &[&str]) -> Self {
        let list = values
            .iter()
            .map(|value| Choice {
                value: (*value).to_owned(),
                label: None,
            })
            .collect();
        Self::new(name, list)
    }

    /// The name under `$defs`, e.g. `UserGroupEnum`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options, in order.
    pub fn options(&self) -> &[Choice] {
        &self.options.list
    }

    fn definition(&self) -> Value {
        let mut definition = Map::new();
        let values: Vec<&str> = self
            .options()
            .iter()
            .map(|choice| choice.value.as_str())
            .collect();
        definition.insert("enum".to_owned(), json!(values));
        if self.options().iter().any(|choice| choice.label.is_some()) {
            let options: Map<String, Value> = self
                .options()
                .iter()
                .map(|choice| {
                    let label = choice.label.clone().unwrap_or_else(|| choice.value.clone());
                    (choice.value.clone(), Value::String(label))
                })
                .collect();
            definition.insert("options".to_owned(), Value::Object(options));
        }
        definition.insert("title".to_owned(), json!(self.name));
        definition.insert("type".to_owned(), json!("string"));
        Value::Object(definition)
    }

    /// Whether `value` is one of the options: a scan of a few, a set lookup among many.
    pub(crate) fn contains(&self, value: &str) -> bool {
        const SCANNED: usize = 16;
        let list = &self.options.list;
        if list.len() <= SCANNED {
            return list.iter().any(|choice| choice.value == value);
        }
        let values = self
            .options
            .values
            .get_or_init(|| list.iter().map(|choice| choice.value.clone()).collect());
        values.contains(value)
    }

    /// pydantic's "expected" text: `'a', 'b' or 'c'`; beyond [`MAX_EXPECTED`] choices, the
    /// first of them and how many more (so that an error's size does not grow with the
    /// choices).
    pub(crate) fn expected(&self) -> String {
        let quoted: Vec<String> = self
            .options()
            .iter()
            .take(MAX_EXPECTED)
            .map(|choice| format!("'{}'", choice.value))
            .collect();
        if self.options().len() > MAX_EXPECTED {
            return format!(
                "{} or one of {} more",
                quoted.join(", "),
                self.options().len() - MAX_EXPECTED
            );
        }
        match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            Some((last, _)) => last.clone(),
            None => String::new(),
        }
    }
}

/// The most choices an `enum` error names.
pub const MAX_EXPECTED: usize = 20;

/// A custom check of a field's value: `Err(message)` becomes a pydantic `value_error`.
pub type Check = fn(&Value) -> Result<(), String>;

/// What a field holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FieldKind {
    /// Text, with optional bounds, pattern and rendering format (`long`, `customerId`, …).
    String {
        /// Fewest characters.
        min_length: Option<u64>,
        /// Most characters.
        max_length: Option<u64>,
        /// A regular expression the text must contain a match of.
        pattern: Option<Pattern>,
        /// A rendering hint.
        format: Option<String>,
    },
    /// A UUID written as text.
    Uuid {
        /// A rendering hint, e.g. `subscriptionId`.
        format: Option<String>,
    },
    /// A whole number (pydantic's `int`) within its bounds.
    Integer(Bounds),
    /// A number (pydantic's `float`) within its bounds.
    Number(Bounds),
    /// True or false.
    Boolean,
    /// One of a set of choices.
    Choice {
        /// The choices.
        choices: Choices,
        /// A rendering hint, e.g. `productId`.
        format: Option<String>,
    },
    /// A nested model (its own fields), rendered under `$defs`.
    Model(Box<FormPage>),
    /// A list of choices, texts, numbers or nested models.
    List {
        /// What each item is.
        item: ListItem,
        /// Fewest items.
        min_items: Option<u64>,
        /// Most items.
        max_items: Option<u64>,
        /// Whether an item may appear twice.
        unique: bool,
    },
    /// Display-only text.
    Label,
    /// A value the form carries but does not show.
    Hidden,
    /// A display-only separator.
    Divider,
    /// A value shown but not editable: an answer may leave it out or repeat it, not change it.
    ReadOnly(Value),
    /// One of a few fixed values written into the field (pydantic's `Literal`).
    Literal(Choices),
    /// A checklist a person confirms (`ACCEPTED`), with the items it shows.
    Accept(Vec<(String, AcceptItem)>),
    /// A display-only block whose content is its default and whose schema refers to an empty
    /// model (`CalloutValue`, `MarkdownValue`, `MigrationSummaryValue`).
    Panel {
        /// The empty model's name under `$defs`.
        model: &'static str,
        /// The rendering hint.
        format: &'static str,
    },
    /// A subscription shown by its id, display-only.
    DisplaySubscription,
}

/// What the items of a list field are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ListItem {
    /// One of a set of choices.
    Choice(Choices),
    /// Free text.
    Text,
    /// A UUID written as text.
    Uuid,
    /// A whole number within its bounds.
    Integer(Bounds),
    /// A number within its bounds.
    Number(Bounds),
    /// A nested model (its own fields), rendered under `$defs`.
    Model(Box<FormPage>),
}

impl ListItem {
    /// Items that are the nested model `model` (see [`FormPage::model`]).
    pub fn model(model: FormPage) -> Self {
        Self::Model(Box::new(model))
    }
}

/// One field of a page.
#[derive(Debug, Clone)]
pub struct Field {
    /// The name submitted answers use.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// The value used when the answer omits the field.
    pub default: Option<Value>,
    /// Help text shown with the field (`description`; a derived page's doc comment).
    pub description: Option<String>,
    /// Whether `null` is a valid answer (pydantic's `X | None`).
    pub nullable: bool,
    /// Custom checks run after the type checks.
    pub checks: Vec<Check>,
    /// Extra schema keys, e.g. a `layout` hint (pydantic's `json_schema_extra`).
    pub extra: Map<String, Value>,
}

impl Field {
    pub(crate) fn with_kind(name: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            default: None,
            description: None,
            nullable: false,
            checks: Vec::new(),
            extra: Map::new(),
        }
    }

    /// A text field.
    pub fn string(name: &str) -> Self {
        Self::with_kind(
            name,
            FieldKind::String {
                min_length: None,
                max_length: None,
                pattern: None,
                format: None,
            },
        )
    }

    /// A UUID field.
    pub fn uuid(name: &str) -> Self {
        Self::with_kind(name, FieldKind::Uuid { format: None })
    }

    /// A whole-number field (pydantic's `int`); bound it with [`Field::gt`] and the like.
    pub fn integer(name: &str) -> Self {
        Self::with_kind(name, FieldKind::Integer(Bounds::default()))
    }

    /// A number field (pydantic's `float`); bound it with [`Field::gt`] and the like.
    pub fn number(name: &str) -> Self {
        Self::with_kind(name, FieldKind::Number(Bounds::default()))
    }

    /// A nested model (see [`FormPage::model`]), rendered as a reference to its `$defs` entry.
    pub fn model(name: &str, model: FormPage) -> Self {
        Self::with_kind(name, FieldKind::Model(Box::new(model)))
    }

    /// A list of `item`s; bound it with [`Field::items`] and [`Field::unique_items`].
    pub fn list(name: &str, item: ListItem) -> Self {
        Self::with_kind(
            name,
            FieldKind::List {
                item,
                min_items: None,
                max_items: None,
                unique: false,
            },
        )
    }

    /// A true/false field.
    pub fn boolean(name: &str) -> Self {
        Self::with_kind(name, FieldKind::Boolean)
    }

    /// A single choice.
    pub fn choice(name: &str, choices: Choices) -> Self {
        Self::with_kind(
            name,
            FieldKind::Choice {
                choices,
                format: None,
            },
        )
    }

    /// A value carried but not shown.
    pub fn hidden(name: &str, value: Value) -> Self {
        let mut field = Self::with_kind(name, FieldKind::Hidden);
        field.default = Some(value);
        field
    }

    /// Display-only text.
    pub fn label(name: &str, text: &str) -> Self {
        let mut field = Self::with_kind(name, FieldKind::Label);
        field.default = Some(json!(text));
        field
    }

    /// A display-only separator.
    pub fn divider(name: &str) -> Self {
        let mut field = Self::with_kind(name, FieldKind::Divider);
        field.default = Some(Value::Null);
        field
    }

    /// A value shown read-only.
    pub fn read_only(name: &str, value: Value) -> Self {
        let mut field = Self::with_kind(name, FieldKind::ReadOnly(value.clone()));
        field.default = Some(value);
        field
    }

    /// Sets the default, making the field optional.
    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    /// Accepts `null` (and defaults to it), like pydantic's `X | None = None`.
    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self.default.get_or_insert(Value::Null);
        self
    }

    /// Bounds a text's length.
    pub fn length(mut self, min: Option<u64>, max: Option<u64>) -> Self {
        match &mut self.kind {
            FieldKind::String {
                min_length,
                max_length,
                ..
            } => (*min_length, *max_length) = (min, max),
            _ => panic!("`length` bounds text; field {} is not text", self.name),
        }
        self
    }

    /// Bounds a number: greater than `limit` (`exclusiveMinimum`).
    pub fn gt(self, limit: impl Into<Limit>) -> Self {
        self.bounded("gt", |bounds| bounds.gt(limit))
    }

    /// Bounds a number: greater than or equal to `limit` (`minimum`).
    pub fn ge(self, limit: impl Into<Limit>) -> Self {
        self.bounded("ge", |bounds| bounds.ge(limit))
    }

    /// Bounds a number: less than `limit` (`exclusiveMaximum`).
    pub fn lt(self, limit: impl Into<Limit>) -> Self {
        self.bounded("lt", |bounds| bounds.lt(limit))
    }

    /// Bounds a number: less than or equal to `limit` (`maximum`).
    pub fn le(self, limit: impl Into<Limit>) -> Self {
        self.bounded("le", |bounds| bounds.le(limit))
    }

    /// Requires a number to be a multiple of `limit` (`multipleOf`).
    pub fn multiple_of(self, limit: impl Into<Limit>) -> Self {
        self.bounded("multiple_of", |bounds| bounds.multiple_of(limit))
    }

    fn bounded(mut self, bound: &str, change: impl FnOnce(Bounds) -> Bounds) -> Self {
        match &mut self.kind {
            FieldKind::Integer(bounds) | FieldKind::Number(bounds) => *bounds = change(*bounds),
            _ => panic!("`{bound}` bounds a number; field {} is not one", self.name),
        }
        self
    }

    /// Requires a text to contain a match of the regular expression `regex` (pydantic's
    /// `pattern`: `string_pattern_mismatch` otherwise).
    ///
    /// # Panics
    /// When `regex` is not a valid expression or the field is not text: both are mistakes in
    /// the form's declaration.
    pub fn pattern(mut self, regex: &str) -> Self {
        let compiled = Pattern::new(regex)
            .unwrap_or_else(|error| panic!("field {}: invalid pattern: {error}", self.name));
        match &mut self.kind {
            FieldKind::String { pattern, .. } => *pattern = Some(compiled),
            _ => panic!("a pattern constrains text; field {} is not text", self.name),
        }
        self
    }

    /// Sets the rendering hint (`format`).
    pub fn format(mut self, hint: &str) -> Self {
        match &mut self.kind {
            FieldKind::String { format, .. }
            | FieldKind::Uuid { format }
            | FieldKind::Choice { format, .. } => *format = Some(hint.to_owned()),
            _ => {}
        }
        self
    }

    /// Bounds a list's length; an explicit `Some(0)` is rendered (`minItems: 0`), as pydantic
    /// does for `min_length=0`.
    pub fn items(mut self, min: Option<u64>, max: Option<u64>) -> Self {
        match &mut self.kind {
            FieldKind::List {
                min_items,
                max_items,
                ..
            } => (*min_items, *max_items) = (min, max),
            _ => panic!("`items` bounds a list; field {} is not one", self.name),
        }
        self
    }

    /// Sets the help text shown with the field (`description`).
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    /// Requires list items to be distinct.
    pub fn unique_items(mut self) -> Self {
        match &mut self.kind {
            FieldKind::List { unique, .. } => *unique = true,
            _ => panic!(
                "`unique_items` constrains a list; field {} is not one",
                self.name
            ),
        }
        self
    }

    /// Adds a schema key the UI reads, e.g. `layout`.
    pub fn extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// Adds a custom check.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Whether the field only shows something (label, divider, hidden value, panel, subscription):
    /// whatever an answer says, it keeps its declared value.
    pub fn is_display_only(&self) -> bool {
        matches!(
            self.kind,
            FieldKind::Label
                | FieldKind::Divider
                | FieldKind::Hidden
                | FieldKind::Panel { .. }
                | FieldKind::DisplaySubscription
        )
    }

    /// Whether an answer must contain the field.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// The field's schema; the `$defs` entries it needs go into `definitions`.
    fn schema(&self, definitions: &mut Map<String, Value>) -> Value {
        let title = title_from_name(&self.name);
        let mut schema = Map::new();
        let mut put = |key: &str, value: Value| {
            schema.insert(key.to_owned(), value);
        };
        match &self.kind {
            FieldKind::String {
                min_length,
                max_length,
                pattern,
                format,
            } => {
                put("type", json!("string"));
                if let Some(format) = format {
                    put("format", json!(format));
                }
                if let Some(max) = max_length {
                    put("maxLength", json!(max));
                }
                if let Some(min) = min_length {
                    put("minLength", json!(min));
                }
                if let Some(pattern) = pattern {
                    put("pattern", json!(pattern.as_str()));
                }
                put("title", json!(title));
            }
            FieldKind::Uuid { format } => {
                put("format", json!(format.as_deref().unwrap_or("uuid")));
                put("title", json!(title));
                put("type", json!("string"));
            }
            FieldKind::Integer(bounds) | FieldKind::Number(bounds) => {
                bounds.render(&mut schema);
                schema.insert("title".to_owned(), json!(title));
                schema.insert("type".to_owned(), json!(number_type(&self.kind)));
            }
            FieldKind::Boolean => {
                put("title", json!(title));
                put("type", json!("boolean"));
            }
            FieldKind::Choice { choices, format } => {
                put("$ref", json!(format!("#/$defs/{}", choices.name)));
                if let Some(format) = format {
                    put("format", json!(format));
                }
                definitions.insert(choices.name.clone(), choices.definition());
            }
            FieldKind::Model(model) => {
                put("$ref", json!(model.reference(definitions)));
            }
            FieldKind::List {
                item,
                min_items,
                max_items,
                unique,
            } => {
                schema.insert("items".to_owned(), item.schema(definitions));
                if let Some(max) = max_items {
                    schema.insert("maxItems".to_owned(), json!(max));
                }
                if let Some(min) = min_items {
                    schema.insert("minItems".to_owned(), json!(min));
                }
                schema.insert("title".to_owned(), json!(title));
                schema.insert("type".to_owned(), json!("array"));
                if *unique {
                    schema.insert("uniqueItems".to_owned(), json!(true));
                }
            }
            FieldKind::Label | FieldKind::Divider | FieldKind::Hidden => {
                let format = match self.kind {
                    FieldKind::Label => "label",
                    FieldKind::Hidden => "hidden",
                    _ => "divider",
                };
                put("anyOf", json!([{"type": "string"}, {"type": "null"}]));
                put("format", json!(format));
                put("title", json!(title));
                put("type", json!("string"));
                put("readOnly", json!(true));
            }
            FieldKind::ReadOnly(value) => {
                let locked = json!({"disabled": true, "value": value});
                match value {
                    // A read-only list names its items' type instead of a constant.
                    Value::Array(items) => {
                        let item_type = items.first().map_or("string", json_type);
                        put("items", json!({"type": item_type}));
                    }
                    _ => put("const", value.clone()),
                }
                put("extraProperties", locked.clone());
                put("readOnly", json!(true));
                put("title", json!(title));
                put("type", json!(json_type(value)));
                put("uniforms", locked);
            }
            FieldKind::Literal(choices) => {
                let values: Vec<&str> =
                    choices.options().iter().map(|c| c.value.as_str()).collect();
                match values.as_slice() {
                    [only] => put("const", json!(only)),
                    _ => put("enum", json!(values)),
                }
                put("title", json!(title));
                put("type", json!("string"));
            }
            FieldKind::Accept(items) => {
                if !items.is_empty() {
                    let data: Vec<Value> = items
                        .iter()
                        .map(|(text, item)| json!([text, item.as_str()]))
                        .collect();
                    put("data", json!(data));
                }
                put("enum", json!([ACCEPTED, INCOMPLETE]));
                put("format", json!("accept"));
                put("title", json!(title));
                put("type", json!("string"));
            }
            FieldKind::Panel { model, format } => {
                definitions.insert(
                    (*model).to_owned(),
                    json!({"properties": {}, "title": model, "type": "object"}),
                );
                put("$ref", json!(format!("#/$defs/{model}")));
                put("format", json!(format));
                put("type", json!("string"));
                put("readOnly", json!(true));
            }
            FieldKind::DisplaySubscription => {
                put("format", json!("subscription"));
                put("title", json!(title));
                put("type", json!("string"));
                put("readOnly", json!(true));
            }
        }
        if self.nullable {
            // pydantic writes `X | None` as anyOf, with the title outside.
            let title = schema.remove("title");
            let inner = Value::Object(std::mem::take(&mut schema));
            schema.insert("anyOf".to_owned(), json!([inner, {"type": "null"}]));
            if let Some(title) = title {
                schema.insert("title".to_owned(), title);
            }
        }
        if let Some(default) = &self.default {
            schema.insert("default".to_owned(), default.clone());
        }
        if let Some(description) = &self.description {
            schema.insert("description".to_owned(), json!(description));
        }
        schema.extend(self.extra.clone());
        Value::Object(sort_keys(schema))
    }
}

impl ListItem {
    /// The schema of one item; the `$defs` entries it needs go into `definitions`.
    fn schema(&self, definitions: &mut Map<String, Value>) -> Value {
        match self {
            Self::Choice(choices) => {
                definitions.insert(choices.name.clone(), choices.definition());
                json!({"$ref": format!("#/$defs/{}", choices.name)})
            }
            Self::Text => json!({"type": "string"}),
            Self::Uuid => json!({"format": "uuid", "type": "string"}),
            Self::Integer(bounds) | Self::Number(bounds) => {
                let mut schema = Map::new();
                bounds.render(&mut schema);
                let kind = if matches!(self, Self::Integer(_)) {
                    "integer"
                } else {
                    "number"
                };
                schema.insert("type".to_owned(), json!(kind));
                Value::Object(sort_keys(schema))
            }
            Self::Model(model) => json!({"$ref": model.reference(definitions)}),
        }
    }
}

fn number_type(kind: &FieldKind) -> &'static str {
    if matches!(kind, FieldKind::Integer(_)) {
        "integer"
    } else {
        "number"
    }
}

/// A check of a whole page's values: `Err(message)` becomes a `value_error` at `__root__`.
pub type PageCheck = fn(&Map<String, Value>) -> Result<(), String>;

/// A page of a form: a title, fields, and checks across fields.
#[derive(Debug, Clone)]
pub struct FormPage {
    /// The page title; pydantic-forms writes `unknown` when a page has none.
    pub title: Option<String>,
    /// The fields, in display order.
    pub fields: Vec<Field>,
    /// Checks run once every field is valid (pydantic's model validators).
    pub checks: Vec<PageCheck>,
    /// Page metadata sent beside the schema, e.g. `{"hasNext": true}` (pydantic-forms' `meta__`).
    pub meta: Option<Value>,
    /// Whether this is a nested model rather than a page: a model ignores unknown keys and its
    /// schema has no `additionalProperties`, as pydantic's plain models do.
    pub nested: bool,
}

impl FormPage {
    /// A page titled `title`.
    pub fn new(title: &str) -> Self {
        Self {
            title: Some(title.to_owned()),
            fields: Vec::new(),
            checks: Vec::new(),
            meta: None,
            nested: false,
        }
    }

    /// A nested model named `name`, for [`Field::model`] and [`ListItem::Model`].
    pub fn model(name: &str) -> Self {
        Self {
            nested: true,
            ..Self::new(name)
        }
    }

    /// A page without a title.
    pub fn untitled() -> Self {
        Self {
            title: None,
            fields: Vec::new(),
            checks: Vec::new(),
            meta: None,
            nested: false,
        }
    }

    /// Adds a field.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Sets the page metadata.
    pub fn meta(mut self, meta: Value) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Adds a check across fields.
    pub fn check(mut self, check: PageCheck) -> Self {
        self.checks.push(check);
        self
    }

    /// The page's JSON Schema, as pydantic-forms renders it: keys sorted, properties in field
    /// order, choices and nested models under `$defs`, and no additional properties.
    pub fn schema(&self) -> Value {
        let mut definitions = Map::new();
        let mut schema = self.schema_without_definitions(&mut definitions);
        if !definitions.is_empty() {
            let definitions = Value::Object(sort_keys(definitions));
            schema.insert("$defs".to_owned(), definitions);
            schema = sort_keys(schema);
        }
        Value::Object(schema)
    }

    /// The reference to this nested model, whose schema (and those it needs) go into
    /// `definitions`, all at the top level as pydantic puts them.
    fn reference(&self, definitions: &mut Map<String, Value>) -> String {
        let name = self.title.clone().unwrap_or_default();
        let schema = self.schema_without_definitions(definitions);
        definitions.insert(name.clone(), Value::Object(schema));
        format!("#/$defs/{name}")
    }

    fn schema_without_definitions(
        &self,
        definitions: &mut Map<String, Value>,
    ) -> Map<String, Value> {
        let properties: Map<String, Value> = self
            .fields
            .iter()
            .map(|field| (field.name.clone(), field.schema(definitions)))
            .collect();
        let required: Vec<&str> = self
            .fields
            .iter()
            .filter(|field| field.is_required())
            .map(|field| field.name.as_str())
            .collect();
        let mut schema = Map::new();
        if !self.nested {
            schema.insert("additionalProperties".to_owned(), json!(false));
        }
        schema.insert("properties".to_owned(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".to_owned(), json!(required));
        }
        schema.insert(
            "title".to_owned(),
            json!(self.title.as_deref().unwrap_or("unknown")),
        );
        schema.insert("type".to_owned(), json!("object"));
        schema
    }

    /// Validates `answer` against the page: the answer with defaults filled in and values
    /// normalised, or every error at once.
    pub fn validate(&self, answer: &Value) -> Result<Map<String, Value>, Vec<ValidationError>> {
        crate::validate::page(self, answer)
    }

    /// Validates `answer` and deserialises the values into `T`, a struct with the page's fields.
    /// A mismatch between the page and `T` is reported as a `__root__` error.
    pub fn parse<T: serde::de::DeserializeOwned>(
        &self,
        answer: &Value,
    ) -> Result<T, Vec<ValidationError>> {
        let values = self.validate(answer)?;
        serde_json::from_value(Value::Object(values)).map_err(|error| {
            vec![ValidationError::new(
                "model_type",
                vec![json!("__root__")],
                format!("the page's values do not fit the target type: {error}"),
                answer,
            )]
        })
    }
}

/// pydantic's title for a field name: words split on `_`, each capitalised.
pub fn title_from_name(name: &str) -> String {
    name.split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The map with its keys in alphabetical order, as pydantic emits them.
fn sort_keys(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::title_from_name;

    #[test]
    fn titles_follow_pythons_str_title() {
        assert_eq!(title_from_name("user_group_ids"), "User Group Ids");
        assert_eq!(title_from_name("send_welcome_mail"), "Send Welcome Mail");
        assert_eq!(title_from_name("divider_1"), "Divider 1");
    }
}
