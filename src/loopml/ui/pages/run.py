"""One run: params, metric charts, tags, datasets, artifacts (browse, preview, download), source and
environment, the model versions it produced, nested runs; editors may set a tag."""

from __future__ import annotations

import csv
import io
import itertools
import posixpath
import urllib.parse

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from loopml.errors import InvalidInput
from loopml.registry import RegistryService
from loopml.tracking import TrackingService
from loopml.ui.framework import Action, Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

SOURCE_PREFIXES = ("loopml.source.", "loopml.env.", "loopml.user", "mlflow.source.", "mlflow.user")
PREVIEW_BYTES = 256 * 1024
PREVIEW_CSV_ROWS = 200
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT_SUFFIXES = {".txt", ".log", ".json", ".yaml", ".yml", ".md", ".py", ".toml", ".cfg", ".ini", ".sql", ".mlmodel"}
MAX_CHARTS = 24


def _kind(path: str) -> str:
    suffix = posixpath.splitext(path.lower())[1]
    name = posixpath.basename(path)
    if suffix in IMAGE_TYPES:
        return "image"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in TEXT_SUFFIXES or name in ("MLmodel", "requirements.txt", "conda.yaml"):
        return "text"
    return "binary"


def _tracking(request: Request) -> TrackingService:
    tracking: TrackingService = request.app.state.tracking
    return tracking


@router.get("/runs/{run_id}")
def run_page(request: Request, session: Session, run_id: str, dir: str = "") -> Response:
    tracking = _tracking(request)
    registry: RegistryService = request.app.state.registry
    run = tracking.get_run(session.principal, run_id)
    experiment = tracking.get_experiment(session.principal, run.experiment_id)
    directory = dir.strip("/")
    entries: dict[str, tuple[str, int | None]] = {}
    for record in tracking.list_artifacts(session.principal, run.id):
        if directory and not record.path.startswith(directory + "/"):
            continue
        rest = record.path[len(directory) + 1 :] if directory else record.path
        head, sep, _ = rest.partition("/")
        full = f"{directory}/{head}" if directory else head
        entries[full] = ("dir", None) if sep else ("file", record.size)
    nested = tracking.search_runs(
        session.principal, [run.experiment_id], filter=f"attributes.parent_run_id = '{run.id}'", max_results=100
    ).items
    produced = f"attributes.run_id = '{run.id}'"
    versions = registry.search_versions(session.principal, filter=produced, max_results=100).items
    source = {k: v for k, v in run.tags.items() if k.startswith(SOURCE_PREFIXES)}
    tags = {k: v for k, v in run.tags.items() if k not in source}
    return render(
        request,
        session,
        "run.html",
        run=run,
        experiment=experiment,
        datasets=tracking.run_datasets(session.principal, run.id),
        directory=directory,
        parent_directory=posixpath.dirname(directory),
        entries=sorted(entries.items(), key=lambda item: (item[1][0] != "dir", item[0])),
        nested=nested,
        versions=versions,
        source=source,
        tags=tags,
        chart_keys=sorted(run.metrics)[:MAX_CHARTS],
        more_charts=max(0, len(run.metrics) - MAX_CHARTS),
        kind=_kind,
    )


@router.get("/runs/{run_id}/artifact")
def artifact_page(request: Request, session: Session, run_id: str, path: str) -> Response:
    tracking = _tracking(request)
    run = tracking.get_run(session.principal, run_id)
    record, chunks = tracking.open_artifact(session.principal, run.id, path)
    kind = _kind(record.path)
    text, rows, truncated = None, None, False
    if kind in ("text", "csv"):
        head = bytearray()
        for chunk in chunks:
            head += chunk
            if len(head) >= PREVIEW_BYTES:
                break
        truncated = record.size > PREVIEW_BYTES
        text = bytes(head[:PREVIEW_BYTES]).decode("utf-8", "replace")
        if kind == "csv":
            dialect = "excel-tab" if record.path.lower().endswith(".tsv") else "excel"
            rows = list(itertools.islice(csv.reader(io.StringIO(text), dialect), PREVIEW_CSV_ROWS + 2))
            truncated = truncated or len(rows) > PREVIEW_CSV_ROWS + 1
            rows = rows[: PREVIEW_CSV_ROWS + 1]
    else:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return render(
        request,
        session,
        "artifact.html",
        run=run,
        record=record,
        kind=kind,
        text=text,
        rows=rows,
        truncated=truncated,
        raw=f"/runs/{run.id}/artifact/raw?" + urllib.parse.urlencode({"path": record.path}),
        parent_directory=posixpath.dirname(record.path),
    )


@router.get("/runs/{run_id}/artifact/raw")
def artifact_raw(request: Request, session: Session, run_id: str, path: str, download: bool = False) -> Response:
    """The artifact's bytes: images inline as images, text as plain text, everything else (and any file with
    `download=1`) as an attachment. Never served as HTML or SVG: a file cannot run script in this origin."""
    record, chunks = _tracking(request).open_artifact(session.principal, run_id, path)
    kind = _kind(record.path)
    name = posixpath.basename(record.path)
    if kind == "image" and not download:
        media, disposition = IMAGE_TYPES[posixpath.splitext(name.lower())[1]], "inline"
    elif kind in ("text", "csv") and not download:
        media, disposition = "text/plain; charset=utf-8", "inline"
    else:
        media, disposition = "application/octet-stream", "attachment"
    quoted = urllib.parse.quote(name, safe="")
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quoted}",
        "Content-Length": str(record.size),
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    }
    return StreamingResponse(chunks, media_type=media, headers=headers)


@router.post("/runs/{run_id}/tags")
def set_tag(run_id: str, action: Action, request: Request) -> Response:
    key = action.get("key").strip()
    if not key:
        raise InvalidInput("a tag needs a key")
    _tracking(request).set_tags(action.session.principal, run_id, {key: action.get("value")})
    return RedirectResponse(f"/runs/{run_id}#tags", status_code=303)
