"""The project an audit row belongs to, found from the entity it records (read in the same transaction).

A project-scoped admin reads only the rows of its project; rows of entities outside any project (tokens
without a project, datasets, request-log segments, feedback of a global token) have no project and are read
by global admins only.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from loopml.store.schema import deployments, experiments, monitors, projects, registered_models, runs, tokens

__all__ = ["project_of"]


def _experiment(conn: Connection, entity_id: str) -> str | None:
    if not entity_id.isdigit():
        return None
    query = (
        select(projects.c.name)
        .select_from(experiments.join(projects, experiments.c.project_id == projects.c.id))
        .where(experiments.c.id == int(entity_id))
    )
    return conn.execute(query).scalar_one_or_none()


def _run(conn: Connection, entity_id: str) -> str | None:
    query = (
        select(projects.c.name)
        .select_from(
            runs.join(experiments, runs.c.experiment_id == experiments.c.id).join(
                projects, experiments.c.project_id == projects.c.id
            )
        )
        .where(runs.c.id == entity_id)
    )
    return conn.execute(query).scalar_one_or_none()


def _model(conn: Connection, name: str) -> str | None:
    query = (
        select(projects.c.name)
        .select_from(registered_models.join(projects, registered_models.c.project_id == projects.c.id))
        .where(registered_models.c.name == name)
    )
    return conn.execute(query).scalar_one_or_none()


def _deployment(conn: Connection, name: str) -> str | None:
    query = (
        select(projects.c.name)
        .select_from(deployments.join(projects, deployments.c.project_id == projects.c.id))
        .where(deployments.c.name == name)
    )
    return conn.execute(query).scalar_one_or_none()


def _monitor(conn: Connection, name: str) -> str | None:
    deployment = conn.execute(select(monitors.c.deployment).where(monitors.c.name == name)).scalar_one_or_none()
    return None if deployment is None else _deployment(conn, deployment)


def _token(conn: Connection, entity_id: str) -> str | None:
    return conn.execute(select(tokens.c.project).where(tokens.c.id == entity_id)).scalar_one_or_none()


_BY_TYPE: dict[str, Callable[[Connection, str], str | None]] = {
    "project": lambda _conn, name: name,
    "experiment": _experiment,
    "run": _run,
    "model": _model,
    "model_version": lambda conn, key: _model(conn, key.rsplit("/", 1)[0]),
    "deployment": _deployment,
    "monitor": _monitor,
    "alert": lambda conn, key: _monitor(conn, key.rsplit(":", 2)[0]),  # `<monitor>:<kind>:<first window>`
    "token": _token,
}


def project_of(conn: Connection, entity_type: str, entity_id: str) -> str | None:
    """The project of the entity, or None when it belongs to none (or no longer exists)."""
    find = _BY_TYPE.get(entity_type)
    return None if find is None else find(conn, entity_id)
