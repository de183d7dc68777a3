"""The components of pydantic_forms.validators that samples 01-06 do not show: Accept (its
validation), contact persons, DisplaySubscription, MigrationSummary, Timestamp with its
defaults, read-only fields of other types, OrganisationId; with a valid and an invalid answer.
"""
from uuid import UUID

from _emit import emit
from _post import run_cases
from pydantic_forms.core import FormPage, page_schema
from pydantic_forms.types import AcceptItemType, FormGenerator, State
from pydantic_forms.validators import (
    Accept,
    ContactPerson,
    DisplaySubscription,
    Divider,
    Hidden,
    Label,
    Timestamp,
    contact_person_list,
    migration_summary,
    read_only_field,
    read_only_list,
)

SUB_ID = UUID("d70a7b91-4a1f-4870-80d8-08dda8823f92")


class Checks(Accept):
    data = [
        ("Read this first", AcceptItemType.LABEL),
        ("Backups are made", AcceptItemType.CHECKBOX),
        ("Nothing else", AcceptItemType.SKIP),
        ("Mind the gap", AcceptItemType.WARNING),
    ]


class ComponentsPage(FormPage):
    subscription: DisplaySubscription = SUB_ID  # type: ignore[assignment]
    summary: migration_summary({"headers": ["before", "after"], "columns": [["a", "b"]]})  # type: ignore[valid-type]
    contact: ContactPerson
    contacts: contact_person_list(min_items=1, max_items=2)  # type: ignore[valid-type]
    when: Timestamp  # type: ignore[valid-type]
    enabled: read_only_field(True)  # type: ignore[valid-type]
    owner: read_only_field("alice")  # type: ignore[valid-type]
    info: Label = "Read me"  # type: ignore[assignment]
    divider: Divider
    ref: Hidden = "ref-1"  # type: ignore[assignment]
    ports: read_only_list([22, 443])  # type: ignore[valid-type]
    checks: Checks


def form(state: State) -> FormGenerator:
    page = yield ComponentsPage
    return page.model_dump(mode="json")


VALID = {
    "contact": {"name": "Ada", "email": "ada@example.org"},
    "contacts": [{"name": "Bob", "email": "bob@example.org", "phone": "123"}],
    "when": 1700000000,
    "checks": "ACCEPTED",
}


def case(**changes):
    return [VALID | changes]


if __name__ == "__main__":
    cases = {
        "valid": [VALID],
        "read_only_sent_unchanged": case(enabled=True, owner="alice", ports=[22, 443], subscription=str(SUB_ID)),
        "read_only_field_changed": case(enabled=False, owner="bob"),
        "read_only_list_changed": case(ports=[1]),
        "display_only_sent": case(info="hacked", divider="x", ref="other", subscription="x"),
        "summary_sent": case(summary={"a": 1}),
        "accept_incomplete": case(checks="INCOMPLETE"),
        "accept_other": case(checks="yes"),
        "contact_without_email": case(contact={"name": "Ada"}),
        "contacts_empty": case(contacts=[]),
        "timestamp_not_an_int": case(when="soon"),
    }
    emit(__file__, {"form": page_schema(ComponentsPage), "cases": run_cases(form, cases)})
