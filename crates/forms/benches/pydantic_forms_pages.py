"""The pydantic-forms side of `cargo bench -p cadre-forms --bench pages`: the orchestrator-core
anchor's form check (orchestrator-core's `bench_forms`, restated here), without its
database: `CreateUserForm.model_validate` of `username: str`, `age: int` and a `user_group`
Choice of one active group, 20,000 times after 200 warm-up calls. Prints validations per second.
Needs pydantic-forms 2.9.0 (and structlog, which it imports without declaring).
"""
import time
from uuid import uuid4

from pydantic import ConfigDict
from pydantic_forms.core import FormPage
from pydantic_forms.validators import Choice

GROUP = "5a4b9c0e-0000-4000-8000-000000000001"
groups = {GROUP: "User Group Staff"}
UserGroupChoice = Choice("UserGroupEnum", zip(groups.keys(), groups.items()))  # type: ignore[call-overload]


class CreateUserForm(FormPage):
    model_config = ConfigDict(title="User internal")

    username: str
    age: int
    user_group: UserGroupChoice  # type: ignore[valid-type]


N = 20_000
page = {"username": "alice", "age": 33, "user_group": GROUP}
for _ in range(200):
    CreateUserForm.model_validate(page)
started = time.perf_counter()
for i in range(N):
    CreateUserForm.model_validate({"username": f"user{i}", "age": 20 + i % 50, "user_group": GROUP})
elapsed = time.perf_counter() - started
try:
    CreateUserForm.model_validate({"username": "x", "age": 1, "user_group": str(uuid4())})
    raise SystemExit("the form accepted an unknown user_group")
except ValueError:
    pass
print(f"{N / elapsed:.0f}")
