"""Numbers in request bodies are JSON numbers: no route takes `true` or `"5"` where its schema says integer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .support import API, Api

NOT_A_NUMBER = re.compile(r"valid (integer|number)")


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def probes(schema: dict[str, Any], document: dict[str, Any], depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(where, a JSON value of `schema`'s shape with `true` put in one numeric spot), for every such spot."""
    schema = _resolve(schema, document)
    if depth > 6:
        return
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from probes(alternative, document, depth + 1)
    kind = schema.get("type")
    if kind in ("integer", "number"):
        yield "", True
    elif kind == "array" and isinstance(schema.get("items"), dict):
        for where, value in probes(schema["items"], document, depth + 1):
            yield f"[]{where}", [value]
    elif kind == "object":
        for name, field in schema.get("properties", {}).items():
            for where, value in probes(field, document, depth + 1):
                yield f".{name}{where}", {name: value}
        if isinstance(schema.get("additionalProperties"), dict):
            for where, value in probes(schema["additionalProperties"], document, depth + 1):
                yield f".*{where}", {"k": value}


def numeric_spots(api: Api) -> list[tuple[str, str, str, Any]]:
    document = api.client.get(f"{API}/openapi.json").json()
    spots = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            seen = set()
            for where, body in probes(schema, document):
                if where not in seen:
                    seen.add(where)
                    spots.append((method.upper(), url, where, body))
    return spots


def test_no_integer_or_number_field_of_any_body_takes_a_boolean(api: Api) -> None:
    spots = numeric_spots(api)
    routes = {(method, url) for method, url, _, _ in spots}
    assert len(routes) >= 8, routes  # runs, search, monitors, deployments, models, datasets, metrics...
    metrics = f"{API}/runs/1/metrics"
    failures = []
    for method, url, where, body in spots:
        if url == metrics:
            continue  # parsed by hand, not by pydantic: see the test below
        response = api.client.request(method, url, json=body, headers=api.headers())
        message = response.json().get("error", {}).get("message", "")
        if response.status_code != 400 or not NOT_A_NUMBER.search(message):
            failures.append(f"{method} {url} {where}={body}: {response.status_code} {message[:200]}")
    assert failures == []


def test_a_run_cannot_be_ended_at_time_false(api: Api) -> None:
    run = api.run(api.experiment())
    response = api.client.patch(
        f"{API}/runs/{run['id']}", json={"status": "FINISHED", "end_time": False}, headers=api.headers()
    )
    assert response.status_code == 400, response.text
    assert "end_time: Input should be a valid integer" in response.json()["error"]["message"]
    assert api.client.get(f"{API}/runs/{run['id']}", headers=api.headers()).json()["run"]["status"] == "RUNNING"


def test_a_monitor_cannot_run_at_now_true(api: Api) -> None:
    response = api.client.post(f"{API}/monitors/any/run", json={"now": True}, headers=api.headers())
    assert response.status_code == 400, response.text  # refused at the edge, before the monitor is looked up
    assert "now: Input should be a valid integer" in response.json()["error"]["message"]


def test_integers_given_as_strings_or_fractions_are_refused(api: Api) -> None:
    experiment_id = api.experiment()
    for value in (str(experiment_id), float(experiment_id) + 0.5, True):
        response = api.client.post(f"{API}/runs", json={"experiment_id": value}, headers=api.headers())
        assert response.status_code == 400, (value, response.text)
    assert api.client.post(f"{API}/runs", json={"experiment_id": experiment_id}, headers=api.headers()).is_success


@pytest.mark.parametrize("column", ["values", "steps", "timestamps"])
def test_metric_columns_refuse_booleans(api: Api, column: str) -> None:
    run = api.run(api.experiment())
    body: dict[str, list[Any]] = {"keys": ["loss"], "values": [0.5], "steps": [1], "timestamps": [1000]}
    body[column] = [True]
    response = api.client.post(f"{API}/runs/{run['id']}/metrics", json=body, headers=api.headers())
    assert response.status_code == 400, response.text
    history = api.client.get(f"{API}/runs/{run['id']}/metrics/loss", headers=api.headers()).json()["metrics"]
    assert history == []
