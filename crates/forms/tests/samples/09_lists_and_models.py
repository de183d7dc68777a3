"""Lists and nested models: a single nested model, an optional one, lists of integers and
numbers (an explicit min_length=0 is minItems 0), unique_conlist, ListOfOne, ListOfTwo, a list of
models; nested errors are located under the field and the item.
"""
from typing import Annotated

from pydantic import BaseModel, Field

from _emit import emit
from _post import run_cases
from pydantic_forms.core import FormPage, page_schema
from pydantic_forms.types import FormGenerator, State
from pydantic_forms.validators import ListOfOne, ListOfTwo, unique_conlist


class Reason(BaseModel):
    code: Annotated[int, Field(ge=1)]
    text: str


class ListsPage(FormPage):
    reason: Reason
    backup_reason: Reason | None = None
    scores: Annotated[list[int], Field(min_length=0, max_length=3)]
    weights: list[float] = []
    codes: unique_conlist(str, min_items=1)  # type: ignore[valid-type]
    one: ListOfOne[str]  # type: ignore[valid-type]
    two: ListOfTwo[int]  # type: ignore[valid-type]
    reasons: Annotated[list[Reason], Field(min_length=1)]


def form(state: State) -> FormGenerator:
    page = yield ListsPage
    return page.model_dump()


VALID = {
    "reason": {"code": 1, "text": "moved"},
    "scores": [1, "2"],
    "codes": ["a", "b"],
    "one": ["x"],
    "two": [1, 2],
    "reasons": [{"code": 2, "text": "left", "extra": "ignored"}],
}


def case(**changes):
    return [VALID | changes]


if __name__ == "__main__":
    cases = {
        "valid": [VALID | {"weights": [0.5, 1], "backup_reason": {"code": 3, "text": "x"}}],
        "nested_error": case(reason={"code": 0}),
        "nested_not_an_object": case(reason="moved"),
        "item_of_wrong_type": case(scores=[1, "x"]),
        "not_unique": case(codes=["a", "a"]),
        "list_of_one_with_two": case(one=["x", "y"]),
        "too_long": case(scores=[1, 2, 3, 4]),
        "too_short": case(reasons=[]),
        "model_item_error": case(reasons=[{"code": 1}]),
        "not_a_list": case(scores=5),
    }
    emit(__file__, {"form": page_schema(ListsPage), "cases": run_cases(form, cases)})
