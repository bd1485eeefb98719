"""MLflow ids to loopml objects, with MLflow's special cases (experiment "0" is the caller's Default)."""

from __future__ import annotations

from loopml.domain import Experiment, Principal, Role
from loopml.errors import ExperimentNotFound, InvalidInput
from loopml.server.mlflow.convert import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID, experiment_id
from loopml.tracking import TrackingService

__all__ = ["find_experiment_by_name", "resolve_experiment", "resolve_experiment_id"]


def resolve_experiment(tracking: TrackingService, principal: Principal, mlflow_id: str) -> Experiment:
    """The experiment an MLflow id names. "0" is the `Default` experiment of the caller's project, created on
    first use by an editor (MLflow clients log there when no experiment was set)."""
    if mlflow_id.strip() == DEFAULT_EXPERIMENT_ID:
        if principal.role.allows(Role.EDITOR):
            return tracking.get_or_create_experiment(principal, DEFAULT_EXPERIMENT)
        try:
            return tracking.find_experiment(principal, DEFAULT_EXPERIMENT)
        except ExperimentNotFound:
            raise ExperimentNotFound(f"Could not find experiment with ID {mlflow_id!r}") from None
    return tracking.get_experiment(principal, experiment_id(mlflow_id))


def resolve_experiment_id(tracking: TrackingService, principal: Principal, mlflow_id: str) -> int:
    if mlflow_id.strip() == DEFAULT_EXPERIMENT_ID:
        return resolve_experiment(tracking, principal, mlflow_id).id
    return experiment_id(mlflow_id)


def find_experiment_by_name(tracking: TrackingService, principal: Principal, name: str) -> Experiment:
    """MLflow names experiments globally, loopml per project: a project token looks in its project; a
    global token in the default project, then in every project if exactly one has that name."""
    try:
        return tracking.find_experiment(principal, name)
    except ExperimentNotFound:
        if principal.project is not None:
            raise
    found = [e for e in tracking.list_experiments(principal) if e.name == name]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ExperimentNotFound(f"Could not find experiment with name {name!r}")
    projects = ", ".join(sorted(e.project for e in found))
    raise InvalidInput(
        f"experiment name {name!r} exists in several projects ({projects}); use a token scoped to one project"
    )
