"""MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`) over loopml's content-addressed store.

A run's artifact URI is `mlflow-artifacts:/<experiment>/<run>/artifacts`, so the proxy path of a file is
`<experiment>/<run>/artifacts/<name>`. A PUT streams the raw body into the artifact store (hashed while it
is written to a temporary key, published whole, then recorded under `<name>`): a body cut off midway leaves
nothing visible. GET streams a file back; GET without a file lists a directory. Every name goes through
`sanitize_path`, decoded once from the raw request path, so traversal (`..`, absolute paths, backslashes,
NUL, `%2e%2e`, double encoding) is refused whatever the route.

Other path shapes (MLflow 3's logged models: `<experiment>/models/<model id>/artifacts/<name>`) are handed
to the `TargetResolver`s registered in `RESOLVERS`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from loopml.artifacts import sanitize_path
from loopml.domain import ArtifactRecord, Principal, Role
from loopml.errors import ArtifactNotFound, InvalidInput, InvalidPath, RunNotFound
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.mlflow.convert import experiment_id
from loopml.server.mlflow.protocol import MlflowResponse, MlflowRoute, read_message
from loopml.tracking import TrackingService

__all__ = ["RESOLVERS", "RunFiles", "TargetResolver", "router", "split_target"]

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)

_RAW_NAME = re.compile(rb"/mlflow-artifacts/artifacts/(.+)$")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class RunFiles:
    """The files of one run, and the name inside it ("" for the run's artifact root)."""

    run_id: str
    name: str


TargetResolver = Callable[[TrackingService, Principal, list[str]], RunFiles | None]
"""Maps the segments of a proxy path to a run's files, or None if the shape is not its own."""


def _run_target(tracking: TrackingService, principal: Principal, segments: list[str]) -> RunFiles | None:
    if len(segments) < 3 or segments[2] != "artifacts" or not _RUN_ID.fullmatch(segments[1]):
        return None
    experiment, run_id = experiment_id(segments[0]), segments[1]
    if tracking.get_run(principal, run_id).experiment_id != experiment:
        raise RunNotFound(f"run {run_id} is not in experiment {experiment}")
    return RunFiles(run_id, "/".join(segments[3:]))


RESOLVERS: list[TargetResolver] = [_run_target]


def split_target(tracking: TrackingService, principal: Principal, path: str) -> RunFiles:
    """The run files a proxy path names; the name is checked by `sanitize_path` (decoded exactly once)."""
    if not path:
        raise InvalidPath("an artifact path is required: <experiment id>/<run id>/artifacts/<name>")
    checked = sanitize_path(path)
    segments = checked.split("/")
    for resolve in RESOLVERS:
        target = resolve(tracking, principal, segments)
        if target is not None:
            return target
    raise ArtifactNotFound(
        f"no artifact location {checked!r}: artifact paths are <experiment id>/<run id>/artifacts/<name>"
    )


def _raw_name(request: Request, decoded: str) -> str:
    """The path as the client sent it, still percent-encoded, so `sanitize_path` decodes it once."""
    raw = request.scope.get("raw_path")
    found = _RAW_NAME.search(raw) if isinstance(raw, bytes) else None
    if found is None:
        return decoded
    try:
        return found.group(1).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath(f"invalid artifact path {found.group(1)!r}: it is not valid UTF-8") from None


def _pull(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """A sync iterator over the request body, for the worker thread that writes the artifact store."""

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


def _upload(tracking: TrackingService, principal: Principal, path: str, body: Iterator[bytes]) -> ArtifactRecord:
    principal.require(Role.EDITOR)  # before any lookup: a refused role never learns whether the run exists
    target = split_target(tracking, principal, path)
    if not target.name:
        raise InvalidPath("an upload needs a file name after <experiment id>/<run id>/artifacts/")
    return tracking.log_artifact(principal, target.run_id, target.name, body)


@router.put("/artifacts/{path:path}")
async def upload_artifact(path: str, request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    await run_in_threadpool(_upload, tracking, principal, _raw_name(request, path), _pull(request.stream()))
    return {}


def _open(tracking: TrackingService, principal: Principal, path: str) -> tuple[ArtifactRecord, Iterator[bytes]]:
    target = split_target(tracking, principal, path)
    if not target.name:
        raise InvalidPath("a download needs a file name after <experiment id>/<run id>/artifacts/")
    record, chunks = tracking.open_artifact(principal, target.run_id, target.name)
    first = next(chunks, b"")  # open the blob now: a missing one is an error status, not a cut stream
    return record, itertools.chain([first], chunks)


@router.get("/artifacts/{path:path}")
async def download_artifact(path: str, request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Response:
    record, chunks = await run_in_threadpool(_open, tracking, principal, _raw_name(request, path))
    headers = {"Content-Length": str(record.size), "X-Content-SHA256": record.digest}
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


def list_directory(tracking: TrackingService, principal: Principal, run_id: str, name: str) -> list[dict[str, Any]]:
    """MLflow's FileInfos of the directory `name` of a run ("" the root): direct children only, directories
    with no size; a file's own name lists that file, as MLflow's stores do."""
    records = tracking.list_artifacts(principal, run_id, name or None)
    if name and not records:
        try:
            record = tracking.open_artifact(principal, run_id, name)[0]
        except ArtifactNotFound:
            return []
        return [{"path": name.rsplit("/", 1)[-1], "is_dir": False, "file_size": record.size}]
    depth = len(name.split("/")) if name else 0
    files: dict[str, dict[str, Any]] = {}
    for record in records:
        parts = record.path.split("/")
        child = parts[depth]
        if len(parts) > depth + 1:
            files.setdefault(child, {"path": child, "is_dir": True})
        else:
            files[child] = {"path": child, "is_dir": False, "file_size": record.size}
    return [files[key] for key in sorted(files)]


def _list(tracking: TrackingService, principal: Principal, path: str) -> dict[str, Any]:
    target = split_target(tracking, principal, path)
    return {"files": list_directory(tracking, principal, target.run_id, target.name)}


@router.get("/artifacts")
async def list_artifacts(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    path = message.string("path") or ""
    return await run_in_threadpool(_list, tracking, principal, path)


def _run_listing(tracking: TrackingService, principal: Principal, run_id: str, path: str) -> dict[str, Any]:
    run = tracking.get_run(principal, run_id)
    name = sanitize_path(path) if path else ""
    files = list_directory(tracking, principal, run_id, name)
    for info in files:  # this endpoint answers paths from the run's root
        info["path"] = f"{name}/{info['path']}" if name else info["path"]
    return {"root_uri": f"mlflow-artifacts:/{run.experiment_id}/{run_id}/artifacts", "files": files}


tracking_router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)


@tracking_router.get("/artifacts/list")
async def list_run_artifacts(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    """`/api/2.0/mlflow/artifacts/list`: the older listing by run id, which MLflow's UI uses."""
    message = await read_message(request)
    run_id = message.string("run_id") or message.string("run_uuid")
    if not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    return await run_in_threadpool(_run_listing, tracking, principal, run_id, message.string("path") or "")
