"""The UI's own CSS and JavaScript, shipped in the package (nothing is fetched from elsewhere)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

from loopml.errors import NotFound
from loopml.ui.framework import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
_FILES = {
    item.name: item.read_bytes()
    for item in resources.files("loopml.ui").joinpath("static").iterdir()
    if item.is_file() and any(item.name.endswith(suffix) for suffix in _TYPES)
}


@router.get("/static/{name}")
def static(name: str) -> Response:
    content = _FILES.get(name)
    if content is None:
        raise NotFound(f"no static file {name!r}")
    kind = next(t for suffix, t in _TYPES.items() if name.endswith(suffix))
    return Response(content, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})
