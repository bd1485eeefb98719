"""The OpenAPI document says what the API answers: every error status a route can give, with the error body."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from .support import API, Api

ERRORS = {"400", "401", "403", "404", "409", "413"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_authenticated_route_declares_its_error_answers_with_the_error_body(api: Api) -> None:
    document = api.client.get(f"{API}/openapi.json").json()
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["error"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's 422 body is never sent

    checked = 0
    for method, path, op in operations(document):
        if path in (f"{API}/health", "/metrics"):
            continue
        missing = ERRORS - set(op["responses"])
        assert not missing, f"{method} {path} does not declare {sorted(missing)}"
        for status in ERRORS:
            content = op["responses"][status]["content"]
            assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        checked += 1
    assert checked >= 40
    assert set(document["paths"]["/metrics"]["get"]["responses"]) == {"200", "401"}
    assert set(document["paths"][f"{API}/health"]["get"]["responses"]) == {"200"}


def test_a_caller_without_a_token_gets_a_declared_answer_on_every_route(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", api.app)
    statuses: set[int] = set()
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            response = case.call()
            statuses.add(response.status_code)
            case.validate_response(response, checks=[status_code_conformance, content_type_conformance])

        call()
    assert 401 in statuses
