"""The web UI of `loopml server`: pages rendered on the server (Jinja2, autoescaped) with a little JavaScript of
its own, all shipped in this package (nothing fetched at run time). Reads go through the same services as the
REST API. Owns the session (login with a token), CSRF, the layout and the pages; imports services and the
server's error mapping, never the store directly."""

from __future__ import annotations

from loopml.ui.app import install_ui, run_embedded_ui

__all__ = ["install_ui", "run_embedded_ui"]
