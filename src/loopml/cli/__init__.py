"""The `loopml` command line: Typer commands over the explicit `Client` (one module per command group).

Interfaces layer: imports `loopml.client`, `loopml.server` (lazily, for `loopml server`), `loopml.store`
(for `loopml db upgrade` only), the domain, errors and settings; nothing imports it.
"""

from __future__ import annotations

from loopml.cli.app import app


def main() -> None:
    """Entry point of the `loopml` console script."""
    app(prog_name="loopml")


__all__ = ["app", "main"]
