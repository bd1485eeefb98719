"""The routes made from the operation table: each operation is a route whose published schema is the table's
request model, and the hand-written endpoints must be exactly the ones the table declares `custom`."""

from __future__ import annotations

import re
from typing import Any

import pytest

from loopml.api import OPERATIONS, Operation
from loopml.server.routes import Custom, operation_router

from .support import API, Api


def _wire_names(op: Operation[Any], *, in_path: bool) -> set[str]:
    names = {info.alias or name for name, info in op.request.model_fields.items()}
    return names & set(op.path_fields) if in_path else names - set(op.path_fields)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return found
    return schema


def test_every_operation_is_published_with_the_table_request_model(api: Api) -> None:
    document = api.client.get(f"{API}/openapi.json").json()
    for op in OPERATIONS.values():
        path = API + re.sub(r"{(\w+):path}", r"{\1}", op.path)
        published = document["paths"][path][op.http.lower()]
        assert published["tags"] == [op.tag]
        parameters = published.get("parameters", [])
        assert {p["name"] for p in parameters if p["in"] == "path"} == _wire_names(op, in_path=True), op.name
        if op.endpoint == "custom":
            continue  # hand-written: its own body (a stream, the hand-parsed metric batch)
        rest = _wire_names(op, in_path=False)
        if op.has_body:
            body = _resolve(document, published["requestBody"]["content"]["application/json"]["schema"])
            if "anyOf" in body:  # an optional body
                body = _resolve(document, body["anyOf"][0])
            assert set(body["properties"]) == rest, op.name
            assert body.get("additionalProperties") is False, f"{op.name}: unknown fields must be refused"
        else:
            assert "requestBody" not in published
            assert {p["name"] for p in parameters if p["in"] == "query"} == rest, op.name


def test_the_hand_written_endpoints_are_exactly_the_custom_operations() -> None:
    custom = {name for name, op in OPERATIONS.items() if op.endpoint == "custom"}
    assert custom == {"log_metrics", "log_artifact", "download_artifact", "revoke_token"}
    with pytest.raises(ValueError, match="custom endpoints do not match the table"):
        operation_router({})
    extra = dict.fromkeys([*custom, "get_run"], Custom(lambda: None))
    with pytest.raises(ValueError, match="get_run"):
        operation_router(extra)
