//! What cadre's SCIM resources hold, as data: the attributes of User and Group with their
//! characteristics (RFC 7643 §2.2, §7). The discovery endpoints publish them, and the
//! handlers take `caseExact` and multi-valuedness from them, so what is advertised is what is
//! done.

use cadre_scim::AttrPath;
use serde_json::{Value, json};

/// The core User schema's URI.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema's URI.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The EnterpriseUser extension's URI.
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// A list response's URI.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A search request's URI.
pub const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A value's type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`
    String,
    /// `boolean`
    Boolean,
    /// `dateTime`
    DateTime,
    /// `reference`
    Reference,
    /// `complex`
    Complex,
}

/// One attribute and how it behaves.
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    /// Its name.
    pub name: &'static str,
    /// For people.
    pub description: &'static str,
    /// Its values' type.
    pub kind: Kind,
    /// Whether it holds a list.
    pub multi_valued: bool,
    /// Whether a resource needs it.
    pub required: bool,
    /// Whether its strings compare with case.
    pub case_exact: bool,
    /// `readWrite`, `readOnly`, `writeOnly` or `immutable`.
    pub mutability: &'static str,
    /// `always`, `default`, `request` or `never`.
    pub returned: &'static str,
    /// `none` or `server`.
    pub uniqueness: &'static str,
    /// A complex attribute's sub-attributes.
    pub sub_attributes: &'static [Attribute],
    /// The values it takes, when it takes only these.
    pub canonical_values: &'static [&'static str],
}

const fn attribute(name: &'static str, kind: Kind, description: &'static str) -> Attribute {
    Attribute {
        name,
        description,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
        sub_attributes: &[],
        canonical_values: &[],
    }
}

impl Attribute {
    const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }
    const fn multi(self) -> Self {
        Self {
            multi_valued: true,
            ..self
        }
    }
    const fn exact(self) -> Self {
        Self {
            case_exact: true,
            ..self
        }
    }
    const fn unique(self) -> Self {
        Self {
            uniqueness: "server",
            ..self
        }
    }
    const fn mutability(self, mutability: &'static str) -> Self {
        Self { mutability, ..self }
    }
    const fn returned(self, returned: &'static str) -> Self {
        Self { returned, ..self }
    }
    const fn canonical(self, canonical_values: &'static [&'static str]) -> Self {
        Self {
            canonical_values,
            ..self
        }
    }
    const fn with(self, sub_attributes: &'static [Attribute]) -> Self {
        Self {
            sub_attributes,
            ..self
        }
    }

    /// The attribute as a schema lists it.
    fn to_json(self) -> Value {
        let kind = match self.kind {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::DateTime => "dateTime",
            Kind::Reference => "reference",
            Kind::Complex => "complex",
        };
        let mut value = json!({
            "name": self.name,
            "type": kind,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        });
        if self.kind == Kind::Complex {
            value["subAttributes"] = self
                .sub_attributes
                .iter()
                .map(|attribute| attribute.to_json())
                .collect();
        }
        if !self.canonical_values.is_empty() {
            value["canonicalValues"] = json!(self.canonical_values);
        }
        if self.kind == Kind::Reference {
            value["referenceTypes"] = json!(["User", "Group"]);
        }
        value
    }
}

/// A resource type's schema: its URI, name and attributes.
#[derive(Debug)]
pub struct Schema {
    /// Its URI.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// For people.
    pub description: &'static str,
    /// Its attributes (a resource's core schema: besides `id`, `externalId` and `meta`, which
    /// every resource has).
    pub attributes: &'static [Attribute],
    /// Whether it is a resource's core schema (not an extension).
    pub core: bool,
    /// The extensions a resource of this schema may carry.
    pub extensions: &'static [&'static Schema],
}

const MEMBER: &[Attribute] = &[
    attribute("value", Kind::String, "The member's id.")
        .exact()
        .mutability("immutable"),
    attribute("$ref", Kind::Reference, "The member's URI.").mutability("immutable"),
    attribute("type", Kind::String, "Always `User`: members are users.")
        .mutability("immutable")
        .canonical(&["User"]),
];

/// What cadre keeps of the EnterpriseUser extension (RFC 7643 §4.3): where the user works.
pub const ENTERPRISE: Schema = Schema {
    id: ENTERPRISE_SCHEMA,
    name: "EnterpriseUser",
    description: "Where the user works",
    attributes: &[
        attribute(
            "employeeNumber",
            Kind::String,
            "The number the employer knows the user by.",
        ),
        attribute("costCenter", Kind::String, "The user's cost center."),
        attribute("organization", Kind::String, "The user's organization."),
        attribute("division", Kind::String, "The user's division."),
        attribute("department", Kind::String, "The user's department."),
        attribute(
            "manager",
            Kind::Complex,
            "The user's manager, kept as given.",
        )
        .with(&[attribute(
            "value",
            Kind::String,
            "The id of the manager's User resource.",
        )
        .exact()]),
    ],
    core: false,
    extensions: &[],
};

/// What cadre's User resource holds.
pub const USER: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "A person: a User subscription",
    core: true,
    extensions: &[&ENTERPRISE],
    attributes: &[
        attribute(
            "userName",
            Kind::String,
            "The name the user signs in with; unique, compared without case.",
        )
        .required()
        .unique(),
        attribute("name", Kind::Complex, "The user's name.").with(&[
            attribute("givenName", Kind::String, "Given name."),
            attribute("familyName", Kind::String, "Family name."),
        ]),
        attribute(
            "emails",
            Kind::Complex,
            "The user's address: cadre keeps one, the primary one given (else the work one, else \
             the first), and returns its value.",
        )
        .multi()
        .required()
        .with(&[attribute("value", Kind::String, "The address.").required()]),
        attribute(
            "active",
            Kind::Boolean,
            "Whether the user may sign in: false disables the user, true enables them again. \
             Every user has it; a new user sent without it is active.",
        )
        .required(),
        attribute(
            "password",
            Kind::String,
            "Accepted and never returned; cadre keeps passwords of its own accounts only.",
        )
        .exact()
        .mutability("writeOnly")
        .returned("never"),
        attribute("groups", Kind::Complex, "The groups the user belongs to.")
            .multi()
            .mutability("readOnly")
            .with(&[
                attribute("value", Kind::String, "The group's id.")
                    .exact()
                    .mutability("readOnly"),
                attribute("$ref", Kind::Reference, "The group's URI.").mutability("readOnly"),
                attribute("display", Kind::String, "The group's name.").mutability("readOnly"),
                attribute("type", Kind::String, "`direct`.").mutability("readOnly"),
            ]),
    ],
};

/// What cadre's Group resource holds.
pub const GROUP: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "A group of users: a UserGroup subscription",
    core: true,
    extensions: &[],
    attributes: &[
        attribute(
            "displayName",
            Kind::String,
            "The group's name; unique, compared without case.",
        )
        .required()
        .unique(),
        attribute("members", Kind::Complex, "The users in the group.")
            .multi()
            .with(MEMBER),
    ],
};

/// The attributes every resource has (RFC 7643 §3.1).
const COMMON: &[Attribute] = &[
    attribute("id", Kind::String, "cadre's id of the subscription.")
        .exact()
        .mutability("readOnly")
        .returned("always")
        .unique(),
    attribute(
        "externalId",
        Kind::String,
        "The id in the systems cadre provisions.",
    )
    .exact(),
];

impl Schema {
    /// The schema as `/Schemas` shows it.
    pub fn to_json(&self, base: &str) -> Value {
        let attributes: Vec<Value> = self
            .all_attributes()
            .map(|attribute| attribute.to_json())
            .collect();
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{}", self.id)},
        })
    }

    /// Its attributes, the common ones first for a core schema.
    fn all_attributes(&self) -> impl Iterator<Item = &Attribute> {
        let common: &[Attribute] = if self.core { COMMON } else { &[] };
        common.iter().chain(self.attributes)
    }

    /// The attribute `path` names (its sub-attribute when it names one), in any case; in an
    /// extension when the path names its URI.
    fn find(&self, path: &AttrPath) -> Option<&Attribute> {
        if let Some(uri) = &path.uri
            && !uri.eq_ignore_ascii_case(self.id)
        {
            return self
                .extensions
                .iter()
                .find_map(|extension| extension.find(path));
        }
        let top = self
            .all_attributes()
            .find(|attribute| attribute.name.eq_ignore_ascii_case(&path.name))?;
        match &path.sub_attr {
            None => Some(top),
            Some(sub) => top
                .sub_attributes
                .iter()
                .find(|attribute| attribute.name.eq_ignore_ascii_case(sub)),
        }
    }

    /// Whether the strings of the attribute `path` names compare with case.
    pub fn case_exact(&self, path: &AttrPath) -> bool {
        self.find(path)
            .is_some_and(|attribute| attribute.case_exact)
    }

    /// Whether the attribute `path` names is multi-valued.
    pub fn multi_valued(&self, path: &AttrPath) -> bool {
        self.find(path)
            .is_some_and(|attribute| attribute.multi_valued)
    }
}
