"""A gate result for people (a Rich table), for a pull-request comment (markdown) and for programs (JSON)."""

from __future__ import annotations

import json
from typing import Any

from loopml.domain.evaluation import GateResult, gate_result_to_json

__all__ = ["render_json", "render_markdown", "render_table"]

_MARK = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def render_markdown(result: GateResult) -> str:
    """A markdown report: verdict, one table row per check with its line in the policy."""
    verdict = "passed" if result.passed else "failed"
    lines = [
        f"### Gate {verdict}: `{result.name}` version {result.version}",
        "",
        f"{sum(c.status == 'pass' for c in result.checks)} of {len(result.checks)} checks passed "
        f"(policy `{result.policy_digest[:12]}`, evaluation `{(result.evaluation_id or '-')[:12]}`).",
        "",
        "| | check | observed | threshold | line | detail |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for check in result.checks:
        detail = check.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {_MARK[check.status]} | `{check.name}` | {_value(check.observed)} | {_value(check.threshold)} | "
            f"{check.line} | {detail} |"
        )
    return "\n".join(lines) + "\n"


def render_json(result: GateResult) -> str:
    return json.dumps(gate_result_to_json(result), indent=2, sort_keys=True)


def render_table(result: GateResult) -> Any:
    """A `rich.table.Table` of the checks."""
    from rich.table import Table

    verdict = "[green]PASSED[/green]" if result.passed else "[red]FAILED[/red]"
    table = Table(title=f"gate {verdict}: {result.name} version {result.version}")
    for column, justify in (("", "left"), ("check", "left"), ("observed", "right"), ("threshold", "right"),
                            ("line", "right"), ("detail", "left")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    colour = {"pass": "green", "fail": "red", "error": "yellow"}
    for check in result.checks:
        table.add_row(
            f"[{colour[check.status]}]{_MARK[check.status]}[/{colour[check.status]}]",
            check.name,
            _value(check.observed),
            _value(check.threshold),
            str(check.line),
            check.detail,
        )
    return table
