"""The replica's routing table: which endpoint answers a method and a path, and the path's parameters.

Each `Endpoint` is declared once in `ENDPOINTS` (method, path template, endpoint name, wire protocol of its
errors). Static paths are found with one dict lookup; templated ones (`{deployment}`, `{version}`) are matched
by compiled patterns in table order. A path that matches an endpoint with another method is a 405, a path that
matches none a 404, both in the error shape of the protocol its prefix belongs to (`/v2` is OIP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ENDPOINTS", "RECENT_PATHS", "Endpoint", "Match", "Router", "protocol_of"]

_PARAMETER = re.compile(r"\{(\w+)\}")
RECENT_PATHS = 1024
"""Templated paths whose match the router keeps (a replica's deployments and versions)."""


@dataclass(frozen=True)
class Endpoint:
    """`method` on `path` (a template: `{name}` is one path segment) is answered by the app's `name` handler."""

    method: str
    path: str
    name: str
    protocol: str = "native"  # whose error body a refusal on this path gets: "native", "oip" or "invocations"

    @property
    def static(self) -> bool:
        return "{" not in self.path


@dataclass(frozen=True)
class Match:
    """What `Router.match` found: the endpoint (None: no endpoint for this method), the path's parameters,
    and for a miss the status (404, or 405 when the path is served with other methods) and allowed methods."""

    endpoint: Endpoint | None
    params: dict[str, str]
    status: int = 200
    allowed: tuple[str, ...] = ()
    protocol: str = "native"  # the error shape of a 405: the protocol of the endpoints on that path


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/v1/deployments/{deployment}/predict", "predict"),
    Endpoint("POST", "/v2/models/{deployment}/infer", "predict", "oip"),
    Endpoint("POST", "/v2/models/{deployment}/versions/{version}/infer", "predict", "oip"),
    Endpoint("POST", "/invocations", "predict", "invocations"),
    Endpoint("GET", "/ping", "health"),
    Endpoint("GET", "/health", "health"),
    Endpoint("GET", "/version", "version"),
    Endpoint("GET", "/metrics", "metrics"),
    Endpoint("GET", "/healthz", "healthz"),
    Endpoint("GET", "/v1/deployments", "deployments"),
    Endpoint("GET", "/v2", "oip_server", "oip"),
    Endpoint("GET", "/v2/health/live", "oip_live", "oip"),
    Endpoint("GET", "/v2/health/ready", "oip_ready", "oip"),
    Endpoint("GET", "/v2/models/{deployment}", "oip_model", "oip"),
    Endpoint("GET", "/v2/models/{deployment}/versions/{version}", "oip_model", "oip"),
    Endpoint("GET", "/v2/models/{deployment}/ready", "oip_model_ready", "oip"),
    Endpoint("GET", "/v2/models/{deployment}/versions/{version}/ready", "oip_model_ready", "oip"),
)


class Router:
    """Finds the endpoint of a request in a table of endpoints; HEAD is served by GET endpoints."""

    def __init__(self, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> None:
        self._static: dict[tuple[str, str], Endpoint] = {}
        self._static_paths: dict[str, list[Endpoint]] = {}
        self._patterns: list[tuple[re.Pattern[str], Endpoint]] = []
        self._recent: dict[tuple[str, str], Match] = {}
        for endpoint in endpoints:
            if endpoint.static:
                if (endpoint.method, endpoint.path) in self._static:
                    raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
                self._static[(endpoint.method, endpoint.path)] = endpoint
                self._static_paths.setdefault(endpoint.path, []).append(endpoint)
            else:
                self._patterns.append((_compile(endpoint.path), endpoint))

    def match(self, method: str, path: str) -> Match:
        """The endpoint for `method` and `path` with the path's parameters (shared: read them, never change
        them); a 404 or 405 `Match` for none."""
        lookup = "GET" if method == "HEAD" else method
        endpoint = self._static.get((lookup, path))
        if endpoint is not None:
            return Match(endpoint, {})
        recent = self._recent.get((lookup, path))
        if recent is not None:
            return recent
        found = self._match_pattern(lookup, path)
        if found.endpoint is not None:
            # a replica sees a handful of prediction paths over and over: a dict lookup instead of the patterns.
            # Bounded, so a client sending endless new names costs a clear now and then, not memory.
            if len(self._recent) >= RECENT_PATHS:
                self._recent.clear()
            self._recent[(lookup, path)] = found
        return found

    def _match_pattern(self, lookup: str, path: str) -> Match:
        others = list(self._static_paths.get(path, ()))
        for pattern, candidate in self._patterns:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if candidate.method == lookup:
                return Match(candidate, found.groupdict())
            others.append(candidate)
        if others:
            allowed = tuple(sorted({e.method for e in others}))
            return Match(None, {}, 405, allowed, others[0].protocol)
        return Match(None, {}, 404, (), protocol_of(path))


def protocol_of(path: str) -> str:
    """The protocol whose error shape a path answers in when no endpoint matches it."""
    return "oip" if path == "/v2" or path.startswith("/v2/") else "native"


def _compile(template: str) -> re.Pattern[str]:
    if not template.startswith("/"):
        raise ValueError(f"a path template starts with '/': {template!r}")
    pieces = _PARAMETER.split(template)  # literal, name, literal, name, ..., literal
    pattern = "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces))
    return re.compile(pattern)
