//! Form pages and their JSON Schema, in the dialect pydantic-forms emits.

use serde_json::{Map, Value, json};

use crate::ValidationError;

/// One option of a choice: the value submitted and the label shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The submitted value.
    pub value: String,
    /// What the user sees; `None` renders the value itself (a plain enum).
    pub label: Option<String>,
}

/// A named set of choices, rendered once under `$defs` and referenced by the fields using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    /// The name under `$defs`, e.g. `UserGroupEnum`.
    pub name: String,
    /// The options, in order.
    pub options: Vec<Choice>,
}

impl Choices {
    /// Choices with labels (`options` in the schema), e.g. subscriptions by description.
    pub fn labelled(name: &str, options: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            name: name.to_owned(),
            options: options
                .into_iter()
                .map(|(value, label)| Choice {
                    value,
                    label: Some(label),
                })
                .collect(),
        }
    }

    /// Plain choices: the values are shown as they are.
    pub fn plain(name: &str, values: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            options: values
                .iter()
                .map(|value| Choice {
                    value: (*value).to_owned(),
                    label: None,
                })
                .collect(),
        }
    }

    fn definition(&self) -> Value {
        let mut definition = Map::new();
        let values: Vec<&str> = self
            .options
            .iter()
            .map(|choice| choice.value.as_str())
            .collect();
        definition.insert("enum".to_owned(), json!(values));
        if self.options.iter().any(|choice| choice.label.is_some()) {
            let options: Map<String, Value> = self
                .options
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

    pub(crate) fn contains(&self, value: &str) -> bool {
        self.options.iter().any(|choice| choice.value == value)
    }

    /// pydantic's "expected" text: `'a', 'b' or 'c'`; beyond [`MAX_EXPECTED`] choices, the
    /// first of them and how many more (so that an error's size does not grow with the
    /// choices).
    pub(crate) fn expected(&self) -> String {
        let quoted: Vec<String> = self
            .options
            .iter()
            .take(MAX_EXPECTED)
            .map(|choice| format!("'{}'", choice.value))
            .collect();
        if self.options.len() > MAX_EXPECTED {
            return format!(
                "{} or one of {} more",
                quoted.join(", "),
                self.options.len() - MAX_EXPECTED
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
        /// A regular expression the text must match (checked by a [`Check`] in cadre).
        pattern: Option<String>,
        /// A rendering hint.
        format: Option<String>,
    },
    /// A UUID written as text.
    Uuid {
        /// A rendering hint, e.g. `subscriptionId`.
        format: Option<String>,
    },
    /// A whole number with optional bounds.
    Integer {
        /// Smallest allowed value.
        minimum: Option<i64>,
        /// Largest allowed value.
        maximum: Option<i64>,
    },
    /// True or false.
    Boolean,
    /// One of a set of choices.
    Choice {
        /// The choices.
        choices: Choices,
        /// A rendering hint, e.g. `productId`.
        format: Option<String>,
    },
    /// A list of choices, texts or nested models.
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
    /// A value shown but not editable; submissions keep it.
    ReadOnly(Value),
}

/// What the items of a list field are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ListItem {
    /// One of a set of choices.
    Choice(Choices),
    /// Free text.
    Text,
    /// A nested model (its own fields), rendered under `$defs`.
    Model(Box<FormPage>),
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
    /// Whether `null` is a valid answer (pydantic's `X | None`).
    pub nullable: bool,
    /// Custom checks run after the type checks.
    pub checks: Vec<Check>,
    /// Extra schema keys, e.g. a `layout` hint (pydantic's `json_schema_extra`).
    pub extra: Map<String, Value>,
}

impl Field {
    fn new(name: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            default: None,
            nullable: false,
            checks: Vec::new(),
            extra: Map::new(),
        }
    }

    /// A text field.
    pub fn string(name: &str) -> Self {
        Self::new(
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
        Self::new(name, FieldKind::Uuid { format: None })
    }

    /// A whole-number field.
    pub fn integer(name: &str) -> Self {
        Self::new(
            name,
            FieldKind::Integer {
                minimum: None,
                maximum: None,
            },
        )
    }

    /// A true/false field.
    pub fn boolean(name: &str) -> Self {
        Self::new(name, FieldKind::Boolean)
    }

    /// A single choice.
    pub fn choice(name: &str, choices: Choices) -> Self {
        Self::new(
            name,
            FieldKind::Choice {
                choices,
                format: None,
            },
        )
    }

    /// A list of choices with bounds on its length.
    pub fn choice_list(
        name: &str,
        choices: Choices,
        min_items: u64,
        max_items: Option<u64>,
    ) -> Self {
        Self::list(name, ListItem::Choice(choices), min_items, max_items)
    }

    /// A list of texts with bounds on its length.
    pub fn text_list(name: &str, min_items: u64, max_items: Option<u64>) -> Self {
        Self::list(name, ListItem::Text, min_items, max_items)
    }

    /// A list of nested models (see [`FormPage::model`]) with bounds on its length.
    pub fn model_list(name: &str, model: FormPage, min_items: u64, max_items: Option<u64>) -> Self {
        Self::list(name, ListItem::Model(Box::new(model)), min_items, max_items)
    }

    fn list(name: &str, item: ListItem, min_items: u64, max_items: Option<u64>) -> Self {
        Self::new(
            name,
            FieldKind::List {
                item,
                min_items: (min_items > 0).then_some(min_items),
                max_items,
                unique: false,
            },
        )
    }

    /// A value carried but not shown.
    pub fn hidden(name: &str, value: Value) -> Self {
        let mut field = Self::new(name, FieldKind::Hidden);
        field.default = Some(value);
        field
    }

    /// Display-only text.
    pub fn label(name: &str, text: &str) -> Self {
        let mut field = Self::new(name, FieldKind::Label);
        field.default = Some(json!(text));
        field
    }

    /// A display-only separator.
    pub fn divider(name: &str) -> Self {
        let mut field = Self::new(name, FieldKind::Divider);
        field.default = Some(Value::Null);
        field
    }

    /// A value shown read-only.
    pub fn read_only(name: &str, value: Value) -> Self {
        let mut field = Self::new(name, FieldKind::ReadOnly(value.clone()));
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
        if let FieldKind::String {
            min_length,
            max_length,
            ..
        } = &mut self.kind
        {
            *min_length = min;
            *max_length = max;
        }
        self
    }

    /// Bounds a number.
    pub fn range(mut self, min: Option<i64>, max: Option<i64>) -> Self {
        if let FieldKind::Integer { minimum, maximum } = &mut self.kind {
            *minimum = min;
            *maximum = max;
        }
        self
    }

    /// Shows a pattern in the schema (enforce it with [`Field::check`]).
    pub fn pattern(mut self, regex: &str) -> Self {
        if let FieldKind::String { pattern, .. } = &mut self.kind {
            *pattern = Some(regex.to_owned());
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

    /// Requires list items to be distinct.
    pub fn unique_items(mut self) -> Self {
        if let FieldKind::List { unique, .. } = &mut self.kind {
            *unique = true;
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

    /// Whether the field only shows something (label, divider, read-only value).
    pub fn is_display_only(&self) -> bool {
        matches!(
            self.kind,
            FieldKind::Label | FieldKind::Divider | FieldKind::Hidden | FieldKind::ReadOnly(_)
        )
    }

    /// Whether an answer must contain the field.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// The field's schema and the `$defs` entry it needs, if any.
    fn schema(&self) -> (Value, Option<(String, Value)>) {
        let title = title_from_name(&self.name);
        let mut schema = Map::new();
        let mut definition = None;
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
                    put("pattern", json!(pattern));
                }
                put("title", json!(title));
            }
            FieldKind::Uuid { format } => {
                put("format", json!(format.as_deref().unwrap_or("uuid")));
                put("title", json!(title));
                put("type", json!("string"));
            }
            FieldKind::Integer { minimum, maximum } => {
                if let Some(max) = maximum {
                    put("maximum", json!(max));
                }
                if let Some(min) = minimum {
                    put("minimum", json!(min));
                }
                put("title", json!(title));
                put("type", json!("integer"));
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
                definition = Some((choices.name.clone(), choices.definition()));
            }
            FieldKind::List {
                item,
                min_items,
                max_items,
                unique,
            } => {
                match item {
                    ListItem::Choice(choices) => {
                        put(
                            "items",
                            json!({"$ref": format!("#/$defs/{}", choices.name)}),
                        );
                        definition = Some((choices.name.clone(), choices.definition()));
                    }
                    ListItem::Text => put("items", json!({"type": "string"})),
                    ListItem::Model(model) => {
                        let name = model.title.clone().unwrap_or_default();
                        put("items", json!({"$ref": format!("#/$defs/{name}")}));
                        definition = Some((name, model.schema()));
                    }
                }
                if let Some(max) = max_items {
                    put("maxItems", json!(max));
                }
                if let Some(min) = min_items {
                    put("minItems", json!(min));
                }
                put("title", json!(title));
                put("type", json!("array"));
                if *unique {
                    put("uniqueItems", json!(true));
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
                put("const", value.clone());
                put("extraProperties", locked.clone());
                put("readOnly", json!(true));
                put("title", json!(title));
                put("type", json!(json_type(value)));
                put("uniforms", locked);
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
        schema.extend(self.extra.clone());
        (Value::Object(sort_keys(schema)), definition)
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

    /// A nested model named `name`, for [`Field::model_list`].
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
    /// order, choices under `$defs`, and no additional properties.
    pub fn schema(&self) -> Value {
        let mut definitions = Map::new();
        let mut properties = Map::new();
        for field in &self.fields {
            let (schema, definition) = field.schema();
            properties.insert(field.name.clone(), schema);
            if let Some((name, definition)) = definition {
                definitions.insert(name, definition);
            }
        }
        let required: Vec<&str> = self
            .fields
            .iter()
            .filter(|field| field.is_required())
            .map(|field| field.name.as_str())
            .collect();
        let mut schema = Map::new();
        if !definitions.is_empty() {
            schema.insert("$defs".to_owned(), Value::Object(sort_keys(definitions)));
        }
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
        Value::Object(schema)
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
