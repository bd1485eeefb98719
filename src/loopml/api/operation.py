"""`Operation`: one control-plane operation, declared once; the server, both client backends, OpenAPI and the
tests derive from it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict

__all__ = ["TEXT_VALUES", "Codec", "HttpMethod", "Operation", "Request", "Scope"]

R = TypeVar("R")

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

Scope = Literal["public", "path", "body", "listing", "own", "global"]
"""How an operation finds the project it acts in, and what a token of another project gets:

- public: no token needed.
- path: the resource named in the path (or the body's id) decides; another project's token gets 404, as for
  a resource that does not exist.
- body: the caller names the project (or a model of it) to create in; another project's token gets 403.
- listing: 200 for every token that has the role; the answer shows only the caller's projects.
- own: what the call writes lands in the caller's project (feedback labels), so every project may call it.
- global: global tokens only; a project-scoped token gets 403.
"""

TEXT_VALUES = object()
"""Marks a field of params or tags: the HTTP client sends numbers and booleans as their text, as the service
would store them (the server takes text only)."""

_TEMPLATE = re.compile(r"{(\w+)(?::path)?}")


class Request(BaseModel):
    """The arguments of one operation: each field is a keyword argument of the service method.

    Fields named in the path template travel in the path; the others are the JSON body (POST, PUT, PATCH) or
    the query string (GET, DELETE). A field's alias is its name on the wire. Body fields are strict (a JSON
    integer only); path and query fields arrive as text and are parsed.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    body_required: ClassVar[bool] = True
    """Whether a POST/PUT/PATCH needs a body at all (`false`: no body means every field at its default)."""

    def arguments(self) -> dict[str, Any]:
        """The service method's keyword arguments (the server calls the service with these)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    @classmethod
    def to_wire(cls, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The wire fields (by alias) of the service arguments the client was given; the HTTP client sends
        these. Arguments left out, or None, are not sent: the server's defaults apply."""
        wire: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            value = arguments.get(name)
            if value is None:
                continue
            if isinstance(value, Mapping) and _text_values(field.annotation, field.metadata):
                value = {k: v if isinstance(v, str | list | dict) or v is None else str(v) for k, v in value.items()}
            wire[field.alias or name] = value
        return wire


def _text_values(annotation: Any, metadata: list[Any]) -> bool:
    """Whether a field is marked `TEXT_VALUES`, directly or on a member of its union (`Values | None`)."""
    if any(item is TEXT_VALUES for item in metadata):
        return True
    if get_origin(annotation) is Annotated:
        return any(item is TEXT_VALUES for item in get_args(annotation)[1:])
    return any(_text_values(member, []) for member in get_args(annotation))


@dataclass(frozen=True)
class Codec(Generic[R]):
    """How an operation's result travels: `encode` (server: result and arguments -> the JSON answer, or text
    for `media_type` text/html) and `decode` (client: that answer -> the result)."""

    encode: Callable[[R, Mapping[str, Any]], Any]
    decode: Callable[[Any], R]
    media_type: str = "application/json"


@dataclass(frozen=True)
class Operation(Generic[R]):
    """One control-plane operation (see docs/architecture.md, "The operation table")."""

    name: str
    service: str
    """The service by name (`tracking`, `registry`, `governance`, `deploy`, `monitoring`): never imported here."""
    method: str
    role: str | None
    """The least role the service requires (`viewer`, `editor`, `admin`), None for public."""
    scope: Scope
    found_by: str
    """How the project is found, in the words of docs/server.md."""
    http: HttpMethod
    path: str
    """Under `/api/v1`, e.g. `/models/{name}/versions`; `{x:path}` takes slashes."""
    request: type[Request]
    response: Codec[R]
    tag: str
    summary: str = ""
    errors: frozenset[int] = frozenset()
    """Error statuses beyond the ones every authenticated route may answer (400, 401, 403, 404, 409, 413)."""
    endpoint: Literal["generic", "custom"] = "generic"
    """`custom`: the server registers a hand-written endpoint for it (streaming, a hot path), named by `name`."""
    backend_method: str | None = None
    """The `Backend` method that carries it instead of `call` (streamed artifacts, metric batches)."""
    adapt: Callable[[Any], R] | None = None
    """Turns the service's answer into `R` where they differ, on the server (before `response.encode`) and in the
    embedded client alike, so both backends return the same thing."""

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(_TEMPLATE.findall(self.path))

    @property
    def has_body(self) -> bool:
        return self.http in ("POST", "PUT", "PATCH")
