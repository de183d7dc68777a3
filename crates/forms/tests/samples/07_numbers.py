"""Numbers: int and float fields with gt/ge/lt/le/multiple_of (exclusiveMinimum,
exclusiveMaximum, minimum, maximum, multipleOf), defaults, an optional float; and the errors
pydantic gives for each bound, for lax parsing (strings, floats, booleans) and for wrong types.
"""
from typing import Annotated

from pydantic import Field

from _emit import emit
from _post import run_cases
from pydantic_forms.core import FormPage, page_schema
from pydantic_forms.types import FormGenerator, State


class NumbersPage(FormPage):
    count: Annotated[int, Field(gt=0, lt=100, multiple_of=5)]
    ratio: Annotated[float, Field(gt=0, le=1000.5)]
    step: Annotated[float, Field(ge=-1.5, lt=2, multiple_of=0.5)]
    limit: int = 10
    threshold: float | None = None
    weight: Annotated[float, Field(ge=0)] = 1.0


def form(state: State) -> FormGenerator:
    page = yield NumbersPage
    return page.model_dump()


VALID = {"count": 15, "ratio": 3.5, "step": 1.0}


def case(**changes):
    return [VALID | changes]


if __name__ == "__main__":
    cases = {
        "valid_lax": [{"count": "15", "ratio": 3, "step": "1.5", "limit": 7.0, "threshold": "0.25", "weight": True}],
        "count_gt": case(count=0),
        "count_lt": case(count=100),
        "count_multiple_of": case(count=7),
        "ratio_le": case(ratio=1000.75),
        "ratio_gt": case(ratio=0),
        "step_ge": case(step=-2),
        "step_lt": case(step=2),
        "step_multiple_of": case(step=0.25),
        "int_from_float": case(count=15.5),
        "int_parsing": case(count="abc"),
        "int_from_decimal_string": case(count="15.0"),
        "int_with_underscores": case(count="1_5"),
        "float_parsing": case(ratio="abc"),
        "float_null": case(ratio=None),
        "float_list": case(ratio=[1]),
        "int_list": case(count=[1]),
        "int_bool": case(count=True),
    }
    emit(__file__, {"form": page_schema(NumbersPage), "cases": run_cases(form, cases)})
