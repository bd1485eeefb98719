"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis), on both backends.

Every operation gets valid (positive) and invalid (negative) generated requests, all sent with the admin
token. Whatever they hold, the server must not answer 5xx, every 4xx carries `{"error": {"code", "message"}}`,
and every answer is one the document declares for that operation: its status, its media type and its body
schema (schemathesis' conformance checks).

The strategies are driven by hand rather than with `schema.parametrize()`, so that the app can come from
the `db_url` fixture (schemathesis' lazy fixture loader does not run on this pytest version).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .support import ADMIN_SECRET, make_app

MAX_EXAMPLES = 25
AUTH = {"Authorization": f"Bearer {ADMIN_SECRET}"}


def check(case: schemathesis.Case) -> None:
    response = case.call(headers=AUTH)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        error = response.json().get("error")
        assert isinstance(error, dict), where
        assert isinstance(error.get("code"), str), where
        assert error["code"], where
        assert isinstance(error.get("message"), str), where
        assert error["message"], where
    case.validate_response(
        response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_any_request_without_a_server_error(db_url: str, tmp_path: Path, mode: GenerationMode) -> None:
    app, store = make_app(db_url, tmp_path / "artifacts", max_request_bytes=1 << 20)
    try:
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:
            if mode is GenerationMode.NEGATIVE and not (operation.body or operation.query or operation.path_parameters):
                continue  # nothing but the token to make invalid, and the token is always valid here

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: schemathesis.Case) -> None:
                check(case)

            fuzz()
    finally:
        store.close()
