"""Calls of MLflow's REST protocol on an in-process app, as the MLflow client makes them."""

from __future__ import annotations

from typing import Any

import httpx

from ..support import ADMIN_SECRET, Api

MLFLOW = "/api/2.0/mlflow"


def call(api: Api, method: str, endpoint: str, body: dict[str, Any] | None = None, secret: str = ADMIN_SECRET) -> Any:
    """The JSON answer of a call that must succeed (GET sends the message as query parameters)."""
    answer = send(api, method, endpoint, body, secret)
    assert answer.status_code == 200, answer.text
    return answer.json()


def send(
    api: Api, method: str, endpoint: str, body: dict[str, Any] | None = None, secret: str = ADMIN_SECRET
) -> httpx.Response:
    url = f"{MLFLOW}{endpoint}"
    if method == "GET":
        return api.client.get(url, params=body or {}, headers=api.headers(secret))
    return api.client.request(method, url, json=body or {}, headers=api.headers(secret))


def error(answer: httpx.Response) -> tuple[int, str]:
    body = answer.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["message"]
    return answer.status_code, body["error_code"]


def experiment(api: Api, name: str = "exp") -> str:
    experiment_id: str = call(api, "POST", "/experiments/create", {"name": name})["experiment_id"]
    return experiment_id


def run(api: Api, experiment_id: str, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = call(api, "POST", "/runs/create", {"experiment_id": experiment_id, **fields})["run"]
    return created
