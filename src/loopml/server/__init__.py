"""The loopml REST API (`/api/v1`): FastAPI app, one router per resource, auth and the HTTP error mapping.

Owns the HTTP edge only: it calls services (`loopml.tracking`, `loopml.governance`) and the ports only to
wire them together; it never imports the SDK, the HTTP client or the CLI.
"""

from loopml.server.app import build_app, create_app, run_server

__all__ = ["build_app", "create_app", "run_server"]
