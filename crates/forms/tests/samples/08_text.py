"""Text: min_length, max_length and pattern (enforced: string_pattern_mismatch), LongText,
OrganisationId, an optional text and a pattern with a default; the errors for each.
"""
from typing import Annotated

from pydantic import Field

from _emit import emit
from _post import run_cases
from pydantic_forms.core import FormPage, page_schema
from pydantic_forms.types import FormGenerator, State
from pydantic_forms.validators import LongText, OrganisationId


class TextPage(FormPage):
    code: Annotated[str, Field(min_length=2, max_length=8, pattern=r"^[A-Z][A-Z0-9]*$")]
    note: LongText
    organisation: OrganisationId
    nickname: str | None = None
    motto: Annotated[str, Field(pattern=r"\w+ \w+")] = "just do it"


def form(state: State) -> FormGenerator:
    page = yield TextPage
    return page.model_dump()


VALID = {"code": "AB1", "note": "line one\nline two", "organisation": "org-1"}


def case(**changes):
    return [VALID | changes]


if __name__ == "__main__":
    cases = {
        "valid": [VALID | {"motto": "keep going on"}],
        "pattern_mismatch": case(code="ab1"),
        "pattern_search_not_anchored": case(motto="-- two words --"),
        "too_short": case(code="A"),
        "too_long": case(code="ABCDEFGHI"),
        "not_a_string": case(code=12),
        "null": case(note=None),
    }
    emit(__file__, {"form": page_schema(TextPage), "cases": run_cases(form, cases)})
