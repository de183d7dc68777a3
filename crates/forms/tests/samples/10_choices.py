"""Choices: Literal fields (one value or several), a str Enum, a labelled Choice, choice_list
with bounds and uniqueness, and an optional enum; the errors for each.
"""
from enum import Enum
from typing import Literal

from _emit import emit
from _post import run_cases
from pydantic_forms.core import FormPage, page_schema
from pydantic_forms.types import FormGenerator, State
from pydantic_forms.validators import Choice, choice_list


class Colour(str, Enum):
    red = "red"
    green = "green"


class Size(Choice):
    S = ("s", "Small")
    L = ("l", "Large")


class Shell(Choice):
    bash = "bash"
    zsh = "zsh"


class ChoicesPage(FormPage):
    plan: Literal["small", "large"]
    kind: Literal["only"] = "only"
    colour: Colour
    size: Size
    sizes: choice_list(Size, min_items=1, max_items=2, unique_items=True)  # type: ignore[valid-type]
    shells: choice_list(Shell, max_items=2)  # type: ignore[valid-type]
    accent: Colour | None = None


def form(state: State) -> FormGenerator:
    page = yield ChoicesPage
    return page.model_dump()


VALID = {"plan": "small", "colour": "red", "size": "s", "sizes": ["s", "l"], "shells": ["bash"]}


def case(**changes):
    return [VALID | changes]


if __name__ == "__main__":
    cases = {
        "valid": [VALID | {"accent": "green", "kind": "only"}],
        "wrong_literal": case(plan="medium"),
        "wrong_single_literal": case(kind="other"),
        "wrong_enum": case(colour="blue"),
        "wrong_labelled_choice": case(size="Small"),
        "choice_list_too_short": case(sizes=[]),
        "choice_list_not_unique": case(sizes=["s", "s"]),
        "choice_list_too_long": case(shells=["bash", "zsh", "bash"]),
    }
    emit(__file__, {"form": page_schema(ChoicesPage), "cases": run_cases(form, cases)})
