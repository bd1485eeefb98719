"""The operation table is consistent with itself and with the services it names: a declaration that does not fit
its service method, its path or its codec fails here, before any route or client call is made from it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from loopml.api import OPERATIONS, Operation
from loopml.deploy import DeployService
from loopml.evaluation import EvaluationService
from loopml.features import FeatureStore
from loopml.gates import GateService
from loopml.governance import GovernanceService
from loopml.monitoring import MonitoringService
from loopml.pipelines import PipelineService, RunLauncher, ScheduleService
from loopml.registry import RegistryService
from loopml.retraining import RetrainService
from loopml.tracking import TrackingService

SERVICES: dict[str, type[Any]] = {
    "tracking": TrackingService,
    "registry": RegistryService,
    "governance": GovernanceService,
    "deploy": DeployService,
    "monitoring": MonitoringService,
    "retrain": RetrainService,
    "evaluations": EvaluationService,
    "gates": GateService,
    "pipelines": PipelineService,
    "schedules": ScheduleService,
    "launcher": RunLauncher,
    "features": FeatureStore,
}

OPS = [pytest.param(op, id=name) for name, op in OPERATIONS.items()]


def _service_arguments(op: Operation[Any]) -> set[str]:
    """The keyword arguments the server passes to the service: the request's `arguments()` of a placeholder."""
    placeholder = op.request.model_construct(**{key: [] for key in op.request.model_fields})
    return set(placeholder.arguments())


@pytest.mark.parametrize("op", OPS)
def test_the_service_method_takes_the_request_fields(op: Operation[Any]) -> None:
    method = getattr(SERVICES[op.service], op.method)
    parameters = list(inspect.signature(method).parameters.values())
    assert [p.name for p in parameters[:2]] == ["self", "principal"], "a service method takes the principal first"
    if op.backend_method is not None:
        return  # carried by its own Backend method (streamed, or the metric batch with its idempotency key)
    names = {p.name for p in parameters[2:]}
    required = {p.name for p in parameters[2:] if p.default is inspect.Parameter.empty}
    given = _service_arguments(op)
    assert given <= names, f"{op.method} has no parameter {sorted(given - names)}"
    assert required <= given, f"{op.method} needs {sorted(required - given)}, which the request does not carry"


@pytest.mark.parametrize("op", OPS)
def test_path_fields_are_request_fields(op: Operation[Any]) -> None:
    wire_names = {info.alias or name for name, info in op.request.model_fields.items()}
    assert set(op.path_fields) <= wire_names, f"{op.path} names a field the request does not have"
    assert op.path.startswith("/") and not op.path.endswith("/")


@pytest.mark.parametrize("op", OPS)
def test_role_and_scope_are_from_the_vocabulary(op: Operation[Any]) -> None:
    assert op.role in {"viewer", "editor", "admin"}, "every operation of the table needs a token"
    assert op.scope in {"path", "body", "listing", "own", "global"}
    assert op.found_by


def test_operations_are_unique_by_name_and_route() -> None:
    routes = [(op.http, op.path) for op in OPERATIONS.values()]
    assert len(set(routes)) == len(routes) == len(OPERATIONS)
    assert all(name == op.name for name, op in OPERATIONS.items())


def test_the_client_sends_params_and_tags_as_text() -> None:
    """Numbers are sent as their text, as the service stores them; the server takes text only."""
    create_run = OPERATIONS["create_run"]
    wire = create_run.request.to_wire({"experiment_id": 1, "params": {"depth": 6, "lr": 0.1}, "name": None})
    assert wire == {"experiment_id": 1, "params": {"depth": "6", "lr": "0.1"}}
    validated = create_run.request.model_validate(wire)
    assert validated.arguments()["params"] == {"depth": "6", "lr": "0.1"}


def test_wire_names_come_from_aliases() -> None:
    deploy = OPERATIONS["deploy"]
    wire = deploy.request.to_wire({"name": "d", "model_ref": "m/1", "canary_steps": (10, 100)})
    assert wire == {"name": "d", "model": "m/1", "canary_steps": (10, 100)}
    arguments = deploy.request.model_validate({"name": "d", "model": "m/1", "canary_steps": [10, 100]}).arguments()
    assert arguments["model_ref"] == "m/1" and arguments["canary_steps"] == (10, 100)
