"""The loopml REST API (`/api/v1`): FastAPI app, one router per resource, auth and the HTTP error mapping.

Owns the HTTP edge only: admission (token and body limits before a body is read), routing, and the error
mapping. It calls the services (tracking, governance, registry, deploy, monitoring) and touches the ports only
to wire them together; it never imports the SDK, the HTTP client or the CLI. Map: docs/architecture.md.
"""

from loopml.server.app import build_app, create_app, run_server

__all__ = ["build_app", "create_app", "run_server"]
