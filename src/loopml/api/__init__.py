"""The operation table: every control-plane operation declared once (`OPERATIONS`, name -> `Operation`).

The server registers its REST routes from it, `HttpBackend.call` and `LocalBackend.call` make their calls from
it, and the OpenAPI document, the authorization test and the client conformance suite iterate over it. One
module per resource group. This package may import the domain, errors and pydantic; never FastAPI, httpx or a
service module (services are named by string).
"""

from __future__ import annotations

from typing import Any

from loopml.api import deploy, evaluation, features, governance, monitoring, pipelines, registry, retrain, tracking
from loopml.api.operation import Codec, Operation, Request, Scope

__all__ = ["OPERATIONS", "Codec", "Operation", "Request", "Scope"]


def _table(*groups: tuple[Operation[Any], ...]) -> dict[str, Operation[Any]]:
    table: dict[str, Operation[Any]] = {}
    routes: set[tuple[str, str]] = set()
    for operation in (op for group in groups for op in group):
        if operation.name in table:
            raise ValueError(f"two operations are named {operation.name!r}")
        if (operation.http, operation.path) in routes:
            raise ValueError(f"two operations are {operation.http} {operation.path}")
        table[operation.name] = operation
        routes.add((operation.http, operation.path))
    return table


OPERATIONS: dict[str, Operation[Any]] = _table(
    tracking.OPERATIONS,
    registry.OPERATIONS,
    governance.OPERATIONS,
    deploy.OPERATIONS,
    monitoring.OPERATIONS,
    retrain.OPERATIONS,
    evaluation.OPERATIONS,
    pipelines.OPERATIONS,
    features.OPERATIONS,
)
