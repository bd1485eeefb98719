"""The root `loopml` command: what `loopml --help` tells a newcomer."""

from __future__ import annotations

from .conftest import Cli


def test_help_describes_every_part_of_the_tool(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0, result.output
    description = " ".join(result.output.split("Options")[0].split())
    for part in ("drift", "experiment tracking", "model registry", "serving", "canary", "monitoring", "audit"):
        assert part in description, part
    for command in ("data", "runs", "models", "serve", "deploy", "monitor", "audit"):
        assert f"│ {command} " in result.output, command
