"""`loopml retrain create | list | show | runs | approve | reject | delete` <-> `client.retrain.*`.

loopml retrain create bike-demand --monitor bike-demand --pipeline examples/bike/pipeline.py:retrain \\
    --on drift:3 --on metric-drop:10% --on schedule:"0 3 * * 1" --gate gates/bike.yaml \\
    --rollout canary --cooldown 1d --max-per-week 2 [--approval manual]
loopml retrain runs bike-demand
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.domain.retrain import RetrainLoop, RetrainPolicy, loop_to_json, policy_to_json
from loopml.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(help="Retraining policies and the loops they run in `loopml server`.", no_args_is_help=True)


def _show_policy(policy: RetrainPolicy) -> None:
    output.pairs(
        f"retraining policy {policy.name}",
        {
            "model": policy.model,
            "monitor": policy.monitor,
            "pipeline": policy.pipeline,
            "triggers": ", ".join(t.label for t in policy.triggers),
            "gate": "yes" if policy.gate else "none",
            "rollout": policy.rollout + (f" {list(policy.canary_steps)}" if policy.rollout == "canary" else ""),
            "cooldown": f"{policy.cooldown_seconds}s",
            "max loops": f"{policy.max_loops} per {policy.period_seconds}s",
            "approval": policy.approval,
            "project": policy.project,
        },
    )


def _describe(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if key == "gate" and isinstance(value, dict):
            parts.append(str(value.get("reason")))
        elif key == "rollout" and isinstance(value, dict):
            parts.append(f"{value.get('how')} to {value.get('deployment')} (revision {value.get('revision')})")
        else:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def _timeline(loop: RetrainLoop) -> None:
    output.stdout().print(
        f"[bold]loop {loop.id}[/bold]  {loop.state}  policy {loop.policy}"
        + (f"  version {loop.version}" if loop.version is not None else "")
    )
    start = loop.events[0].at if loop.events else loop.created_at
    output.table(
        None,
        ["at", "+s", "state", "what"],
        [(output.iso_time(e.at), f"{(e.at - start) / 1000:.1f}", e.state, _describe(e.detail)) for e in loop.events],
    )
    if loop.error:
        output.stdout().print(f"  why: {loop.error}")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The policy's name; also the registered model unless --model.")],
    monitor: Annotated[str, typer.Option(help="The monitor whose windows trigger it (its deployment is rolled out).")],
    pipeline: Annotated[str, typer.Option(help="The training pipeline: path/to/file.py:function or module:function.")],
    on: Annotated[
        list[str],
        typer.Option(
            "--on",
            help='A trigger (repeat): drift:3, error-rate:2, metric-drop:10%, schedule:"0 3 * * 1", dataset:NAME.',
        ),
    ],
    model: Annotated[str | None, typer.Option(help="The registered model, when not NAME.")] = None,
    gate: Annotated[Path | None, typer.Option(help="The gate policy YAML file (stored with the policy).")] = None,
    rollout: Annotated[str, typer.Option(help="canary (default) or direct.")] = "canary",
    canary_steps: Annotated[str | None, typer.Option(help="Canary weights, e.g. 10,50,100.")] = None,
    analysis_seconds: Annotated[int | None, typer.Option(help="How long each canary step is analysed.")] = None,
    cooldown: Annotated[str, typer.Option(help="No new loop this long after the last one ended (1d, 12h).")] = "1d",
    max_per_week: Annotated[int | None, typer.Option(help="At most this many loops started per 7 days.")] = None,
    max_per_day: Annotated[int | None, typer.Option(help="At most this many loops started per day.")] = None,
    approval: Annotated[str, typer.Option(help="auto (default) or manual: a person approves before rollout.")] = "auto",
    label: Annotated[
        str | None, typer.Option(help="The label column of the fresh rows the pipeline returns (for the gate).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Retrain a model automatically: trigger -> pipeline -> challenger -> gate -> rollout -> champion."""
    if max_per_week is not None and max_per_day is not None:
        raise InvalidInput("give --max-per-week or --max-per-day, not both")
    max_loops, period = (max_per_day, "1d") if max_per_day is not None else (max_per_week or 2, "7d")
    steps = None
    if canary_steps is not None:
        try:
            steps = [int(s) for s in canary_steps.split(",")]
        except ValueError:
            raise InvalidInput(
                f"--canary-steps takes comma-separated percentages such as 10,50,100, got {canary_steps!r}"
            ) from None
    if gate is not None and not gate.is_file():
        raise InvalidInput(f"gate policy file {str(gate)!r} does not exist")
    made = state(ctx).client().retrain.create(
        name, monitor=monitor, pipeline=pipeline, on=on, model=model,
        gate=None if gate is None else gate.read_text(encoding="utf-8"), rollout=rollout, canary_steps=steps,
        analysis_seconds=analysis_seconds, cooldown=cooldown, max_loops=max_loops, period=period,
        approval=approval, label=label,
    )  # fmt: skip
    if json:
        output.print_json(policy_to_json(made))
        return
    _show_policy(made)


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """The retraining policies."""
    found = state(ctx).client().retrain.list()
    if json:
        output.print_json([policy_to_json(p) for p in found])
        return
    output.table(
        "retraining policies",
        ["name", "model", "monitor", "triggers", "rollout", "approval"],
        [(p.name, p.model, p.monitor, ", ".join(t.label for t in p.triggers), p.rollout, p.approval) for p in found],
    )


@app.command("show")
def show(ctx: typer.Context, name: str, json: JsonOption = False) -> None:
    """One policy (a policy name) or one loop (a loop id)."""
    client = state(ctx).client()
    if len(name) == 32 and all(c in "0123456789abcdef" for c in name):
        loop = client.retrain.get_loop(name)
        if json:
            output.print_json(loop_to_json(loop))
        else:
            _timeline(loop)
        return
    policy = client.retrain.get(name)
    if json:
        output.print_json(policy_to_json(policy))
        return
    _show_policy(policy)


@app.command("runs")
def runs(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The policy (default: every policy).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many loops, newest first.")] = 20,
    json: JsonOption = False,
) -> None:
    """The timeline of every loop: trigger -> pipeline -> version -> gate -> rollout."""
    found = state(ctx).client().retrain.runs(name, limit)
    if json:
        output.print_json([loop_to_json(loop) for loop in found])
        return
    if not found:
        output.stdout().print("no retraining loops yet")
    for loop in found:
        _timeline(loop)


@app.command("approve")
def approve(ctx: typer.Context, loop_id: str, reason: Annotated[str | None, typer.Option()] = None) -> None:
    """Let a loop waiting for approval roll its challenger out."""
    _timeline(state(ctx).client().retrain.approve(loop_id, reason))


@app.command("reject")
def reject(ctx: typer.Context, loop_id: str, reason: Annotated[str | None, typer.Option()] = None) -> None:
    """End a loop waiting for approval; the champion keeps serving."""
    _timeline(state(ctx).client().retrain.reject(loop_id, reason))


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a policy (a loop it has running is failed; the champion keeps serving)."""
    gone = state(ctx).client().retrain.delete(name)
    output.stdout().print(f"deleted retraining policy {gone.name}")
