"""Shared by the samples with validation cases: post each case's answers through pydantic-forms'
post_form behind FastAPI, as orchestrator-core serves forms, and keep status and body."""
from fastapi import Body, FastAPI
from fastapi.testclient import TestClient

from pydantic_forms.core import post_form
from pydantic_forms.exception_handlers.fastapi import form_error_handler
from pydantic_forms.exceptions import FormException


def run_cases(form, cases: dict) -> dict:
    app = FastAPI()
    app.add_exception_handler(FormException, form_error_handler)  # type: ignore[arg-type]

    @app.post("/form")
    def submit(answers: list[dict] = Body(...)) -> dict:
        return post_form(form, {}, answers)

    client = TestClient(app)
    out = {}
    for label, answers in cases.items():
        r = client.post("/form", json=answers)
        out[label] = {"request_body": answers, "http_status": r.status_code, "response_body": r.json()}
    return out
