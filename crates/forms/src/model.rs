//! Pages declared as Rust types: what `#[derive(FormPage)]` and `#[derive(FormChoices)]`
//! implement ([`FormModel`], [`FormValue`], [`FormChoices`]), choices looked up when a page is
//! built ([`ChoiceLookup`], [`LookedUp`]), and the page builder of a derived page
//! ([`ModelPage`]).

use std::collections::HashMap;
use std::marker::PhantomData;

use async_trait::async_trait;
use cadre_domain::{DomainError, FormLookups, ProductType};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::standard::{Recent, active_subscriptions};
use crate::{Bounds, Choices, Field, FormPage, ListItem, PageBuilder, ValidationError};

/// A page declared as a struct (`#[derive(FormPage)]`): its fields, the lookups its dynamic
/// choices come from, and the struct a validated answer parses into.
pub trait FormModel: DeserializeOwned {
    /// The struct's name: the title it has as a nested model, as pydantic titles a model with
    /// its class name.
    const NAME: &'static str;

    /// The page, with the dynamic choices `choices` looked up for it.
    fn form_page(choices: &LookedUp) -> FormPage;

    /// The fields whose choices are looked up when the page is built, and their lookups.
    fn lookups() -> Vec<(&'static str, &'static dyn ChoiceLookup)>;

    /// The struct as a nested model of another page: titled with its name, ignoring unknown
    /// keys. Its dynamic choices are not looked up.
    fn nested_model() -> FormPage {
        let mut model = Self::form_page(&LookedUp::default());
        model.title = Some(Self::NAME.to_owned());
        model.nested = true;
        model
    }

    /// Validates `answer` against the page and parses it into the struct.
    fn parse(choices: &LookedUp, answer: &Value) -> Result<Self, Vec<ValidationError>> {
        Self::form_page(choices).parse(answer)
    }
}

/// A Rust type as a field of a derived page. `#[derive(FormPage)]` implements it for a struct
/// (a nested model), `#[derive(FormChoices)]` for an enum (a choice).
pub trait FormValue {
    /// A field `name` holding this type.
    fn field(name: &str) -> Field;

    /// A list item of this type.
    fn item() -> ListItem;

    /// A field `name` holding this type, chosen from `choices`.
    fn choice_field(name: &str, choices: Choices) -> Field {
        Field::choice(name, choices)
    }
}

/// The choices of an enum (`#[derive(FormChoices)]`).
pub trait FormChoices {
    /// Every variant, as a choice.
    fn choices() -> Choices;
}

/// Where a field's choices come from when its page is built, e.g. the active user groups
/// ([`ActiveSubscriptions`]).
#[async_trait]
pub trait ChoiceLookup: Send + Sync {
    /// The choices to offer now.
    async fn choices(&self, lookups: &dyn FormLookups) -> Result<Choices, DomainError>;
}

/// The active subscriptions of a product type, as choices (value: subscription id, label:
/// description) in an enum with a name of its own.
pub struct ActiveSubscriptions {
    /// The product type.
    pub product_type: &'static str,
    /// The enum's name under `$defs`.
    pub enum_name: &'static str,
}

/// The active user groups, as `UserGroupEnum`: the seed's user group selector.
pub static ACTIVE_USER_GROUPS: ActiveSubscriptions = ActiveSubscriptions {
    product_type: ProductType::USER_GROUP,
    enum_name: "UserGroupEnum",
};

#[async_trait]
impl ChoiceLookup for ActiveSubscriptions {
    async fn choices(&self, lookups: &dyn FormLookups) -> Result<Choices, DomainError> {
        active_subscriptions(lookups, ProductType::new(self.product_type), self.enum_name).await
    }
}

/// The choices looked up for a page's fields, by field name.
#[derive(Debug, Clone, Default)]
pub struct LookedUp(HashMap<String, Choices>);

impl LookedUp {
    /// Records `choices` for field `field`.
    pub fn with(mut self, field: &str, choices: Choices) -> Self {
        self.0.insert(field.to_owned(), choices);
        self
    }

    /// The choices of field `field`; none when they were not looked up.
    pub fn get(&self, field: &str) -> Choices {
        self.0
            .get(field)
            .cloned()
            .unwrap_or_else(|| Choices::plain(field, &[]))
    }
}

/// The page of the derived type `T`, its dynamic choices looked up at most once per
/// [`CHOICES_TTL`](crate::standard::CHOICES_TTL) (as [`crate::standard::WithActive`] does).
pub struct ModelPage<T> {
    recent: Recent<LookedUp>,
    model: PhantomData<fn() -> T>,
}

impl<T> ModelPage<T> {
    /// The page of `T`.
    pub fn new() -> Self {
        Self {
            recent: Recent::new(),
            model: PhantomData,
        }
    }
}

impl<T> Default for ModelPage<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<T: FormModel> PageBuilder for ModelPage<T> {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        _: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let look_up = async {
            let mut choices = LookedUp::default();
            for (field, lookup) in T::lookups() {
                choices = choices.with(field, lookup.choices(lookups).await?);
            }
            Ok::<_, DomainError>(choices)
        };
        let choices = self.recent.get_or_look_up(look_up).await?;
        Ok(T::form_page(&choices))
    }
}

impl FormValue for String {
    fn field(name: &str) -> Field {
        Field::string(name)
    }

    fn item() -> ListItem {
        ListItem::Text
    }
}

impl FormValue for bool {
    fn field(name: &str) -> Field {
        Field::boolean(name)
    }

    fn item() -> ListItem {
        panic!("a list of booleans is not a pydantic-forms field")
    }
}

impl FormValue for Uuid {
    fn field(name: &str) -> Field {
        Field::uuid(name)
    }

    fn item() -> ListItem {
        ListItem::Uuid
    }
}

/// Signed integers: pydantic's `int`.
macro_rules! signed {
    ($($ty:ty),*) => {$(
        impl FormValue for $ty {
            fn field(name: &str) -> Field {
                Field::integer(name)
            }

            fn item() -> ListItem {
                ListItem::Integer(Bounds::new())
            }
        }
    )*};
}

/// Unsigned integers: pydantic's `int` with `ge=0`, so that a negative answer is an error at
/// its field rather than at parsing.
macro_rules! unsigned {
    ($($ty:ty),*) => {$(
        impl FormValue for $ty {
            fn field(name: &str) -> Field {
                Field::integer(name).ge(0)
            }

            fn item() -> ListItem {
                ListItem::Integer(Bounds::new().ge(0))
            }
        }
    )*};
}

signed!(i8, i16, i32, i64);
unsigned!(u8, u16, u32, u64);

impl FormValue for f64 {
    fn field(name: &str) -> Field {
        Field::number(name)
    }

    fn item() -> ListItem {
        ListItem::Number(Bounds::new())
    }
}

impl<T: FormValue> FormValue for Option<T> {
    fn field(name: &str) -> Field {
        T::field(name).nullable()
    }

    fn item() -> ListItem {
        panic!("a list of optional items is not a pydantic-forms field")
    }

    fn choice_field(name: &str, choices: Choices) -> Field {
        T::choice_field(name, choices).nullable()
    }
}

impl<T: FormValue> FormValue for Vec<T> {
    fn field(name: &str) -> Field {
        Field::list(name, T::item())
    }

    fn item() -> ListItem {
        panic!("a list of lists is not a pydantic-forms field")
    }

    fn choice_field(name: &str, choices: Choices) -> Field {
        Field::list(name, ListItem::Choice(choices))
    }
}
