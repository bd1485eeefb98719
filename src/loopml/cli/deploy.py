"""`loopml deploy ...` <-> `client.deployments` (deploy, status, list, rollback, promote, history, decisions,
shadow).

`loopml deploy NAME --model REF [...]` is short for `loopml deploy create NAME --model REF [...]`: a first
argument that is not a subcommand is a deployment name (a deployment named like a subcommand, say `status`,
needs the long form).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.emit import write_files
from loopml.cli.options import JsonOption
from loopml.domain import Deployment, RolloutDecision
from loopml.domain.wire import deployment_revision_to_json, deployment_to_json, rollout_decision_to_json
from loopml.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class DeployGroup(TyperGroup):
    """Reads `deploy NAME ...` as `deploy create NAME ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["create", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DeployGroup,
    help="Deployments: deploy a model version (direct, canary, shadow, A/B), status, rollback, promote, history.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Deployment name.")]
Reason = Annotated[str | None, typer.Option(help="Why (kept in the history and the audit log).")]
Limit = Annotated[int, typer.Option(min=1, max=10_000, help="Most entries to show.")]


def parse_duration(text: str) -> int:
    """Seconds in `300`, `300s`, `5m`, `1h` or `1d`."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput(f"--analysis takes a duration like 300, 300s, 5m or 1h, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_steps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InvalidInput(f"--canary takes comma-separated percentages like 10,50,100, got {text!r}") from None


def parse_thresholds(items: Sequence[str]) -> dict[str, float] | None:
    if not items:
        return None
    found: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or number != number:
            raise InvalidInput(f"--threshold takes KEY=NUMBER (e.g. max_p99_increase_ms=25), got {item!r}")
        found[key.strip()] = int(number) if number.is_integer() else number
    return found


def _show(deployment: Deployment) -> None:
    d = deployment
    steps = ",".join(map(str, d.canary_steps)) if d.strategy == "canary" else ""
    output.stdout().print(
        f"[bold]{d.name}[/bold] (project {d.project}): {d.strategy}, {d.state}, revision {d.revision}"
        + (f", step {d.step_index + 1} of {steps}" if steps else "")
        + (f", follows alias {d.follows_alias}" if d.follows_alias else "")
        + f", updated {output.iso_time(d.updated_at)}"
    )
    output.table(
        None, ["model", "version", "weight", "role"], ([v.model, v.version, v.weight, v.role] for v in d.versions)
    )


def _decisions_table(decisions: Sequence[RolloutDecision]) -> None:
    output.table(
        None,
        ["time", "revision", "step", "outcome", "action", "reason"],
        ([output.iso_time(x.time), x.revision, x.step, x.outcome, x.action, x.reason] for x in decisions),
    )


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    model: Annotated[
        str | None, typer.Option("--model", help="The version to deploy: name@alias, name/3 or models:/...")
    ] = None,
    canary: Annotated[
        str | None, typer.Option(help="Canary steps, e.g. 10,50,100 (percent of traffic to the new version).")
    ] = None,
    analysis: Annotated[str, typer.Option(help="How long each canary step is analysed: 300, 5m, 1h.")] = "5m",
    shadow: Annotated[bool, typer.Option("--shadow", help="Send it a copy of live traffic; never answer.")] = False,
    ab: Annotated[
        int | None, typer.Option("--ab", min=1, max=99, help="A/B test: this percent of traffic to it, for good.")
    ] = None,
    sticky_key: Annotated[
        str | None, typer.Option(help="Request field that keeps one caller on one version (A/B).")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(help="Analysis threshold KEY=NUMBER, repeatable (e.g. max_error_rate_increase=0.02)."),
    ] = None,
    emit: Annotated[
        tuple[str, Path] | None,
        typer.Option(
            "--emit",
            metavar="docker|k8s DIR",
            help="Write a Dockerfile or Kubernetes manifests for this deployment's replicas into DIR "
            "(with --model: after deploying). `loopml emit` takes the image, replicas and store options.",
        ),
    ] = None,
    feature_service: Annotated[
        str | None,
        typer.Option(help="A feature service: replicas fetch its features by the request's entity keys."),
    ] = None,
    missing_features: Annotated[
        str, typer.Option(help="An entity with no feature value: refuse (404) or default (declared defaults).")
    ] = "refuse",
    reason: Reason = None,
    json: JsonOption = False,
) -> None:
    """Deploy a model version: all traffic at once (default), or --canary, --shadow, --ab; --emit writes the
    replicas' Dockerfile or Kubernetes manifests."""
    if model is None:
        if emit is None:
            raise InvalidInput("give --model REF to deploy a version, or --emit docker|k8s DIR to write replica files")
        write_files(name, emit[0], emit[1])
        return
    chosen = [
        flag for flag, on in (("--canary", canary is not None), ("--shadow", shadow), ("--ab", ab is not None)) if on
    ]
    if len(chosen) > 1:
        raise InvalidInput(f"choose one strategy; got {' and '.join(chosen)}")
    strategy = "canary" if canary is not None else "shadow" if shadow else "ab" if ab is not None else "direct"
    deployment = (
        state(ctx)
        .client()
        .deployments.deploy(
            name,
            model,
            strategy=strategy,
            canary_steps=parse_steps(canary) if canary is not None else (10, 50, 100),
            analysis_seconds=parse_duration(analysis),
            thresholds=parse_thresholds(threshold or []),
            sticky_key=sticky_key,
            ab_weight=ab,
            reason=reason,
            feature_service=feature_service,
            missing_features=missing_features,
        )
    )
    if json:
        output.print_json(deployment_to_json(deployment))
    else:
        _show(deployment)
    if emit is not None:
        write_files(name, emit[0], emit[1])


@app.command("status")
def status(ctx: typer.Context, name: Name, json: JsonOption = False) -> None:
    """The current revision: strategy, state, versions and weights."""
    deployment = state(ctx).client().deployments.status(name)
    if json:
        output.print_json(deployment_to_json(deployment))
    else:
        _show(deployment)


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """Every deployment you can see."""
    found = state(ctx).client().deployments.list()
    if json:
        output.print_json([deployment_to_json(d) for d in found])
        return
    output.table(
        None,
        ["name", "strategy", "state", "revision", "versions", "updated"],
        (
            [
                d.name,
                d.strategy,
                d.state,
                d.revision,
                ", ".join(f"{v.label} {v.weight}% {v.role}" for v in d.versions),
                output.iso_time(d.updated_at),
            ]
            for d in found
        ),
    )


@app.command("rollback")
def rollback(ctx: typer.Context, name: Name, reason: Reason = None, json: JsonOption = False) -> None:
    """Roll back now: the candidate gets no traffic, or the previous version serves again."""
    deployment = state(ctx).client().deployments.rollback(name, reason)
    if json:
        output.print_json(deployment_to_json(deployment))
    else:
        _show(deployment)


@app.command("promote")
def promote(ctx: typer.Context, name: Name, reason: Reason = None, json: JsonOption = False) -> None:
    """Make the candidate the stable version at 100% now."""
    deployment = state(ctx).client().deployments.promote(name, reason)
    if json:
        output.print_json(deployment_to_json(deployment))
    else:
        _show(deployment)


@app.command("pause")
def pause(ctx: typer.Context, name: Name, reason: Reason = None, json: JsonOption = False) -> None:
    """Hold a canary rollout at its current split until `resume`."""
    deployment = state(ctx).client().deployments.pause(name, reason)
    if json:
        output.print_json(deployment_to_json(deployment))
    else:
        _show(deployment)


@app.command("resume")
def resume(ctx: typer.Context, name: Name, reason: Reason = None, json: JsonOption = False) -> None:
    """Continue a paused canary rollout; the current step's analysis window starts again."""
    deployment = state(ctx).client().deployments.resume(name, reason)
    if json:
        output.print_json(deployment_to_json(deployment))
    else:
        _show(deployment)


@app.command("history")
def history(ctx: typer.Context, name: Name, limit: Limit = 50, json: JsonOption = False) -> None:
    """Every revision, newest first: who changed what, when and why."""
    revisions = state(ctx).client().deployments.history(name, limit)
    if json:
        output.print_json([deployment_revision_to_json(r) for r in revisions])
        return
    output.table(
        None,
        ["revision", "time", "actor", "state", "versions", "reason"],
        (
            [
                r.revision,
                output.iso_time(r.created_at),
                r.actor,
                r.deployment.state,
                ", ".join(f"{v.label} {v.weight}% {v.role}" for v in r.deployment.versions),
                r.reason,
            ]
            for r in revisions
        ),
    )


@app.command("decisions")
def decisions(ctx: typer.Context, name: Name, limit: Limit = 50, json: JsonOption = False) -> None:
    """The rollout controller's decisions, oldest first (--json for their numbers)."""
    found = state(ctx).client().deployments.decisions(name, limit)
    if json:
        output.print_json([rollout_decision_to_json(d) for d in found])
    else:
        _decisions_table(found)


@app.command("shadow")
def shadow_comparison(
    ctx: typer.Context,
    name: Name,
    window: Annotated[str, typer.Option(help="How far back to compare: 300, 5m, 1h.")] = "1h",
    tolerance: Annotated[float, typer.Option(min=0, help="Largest difference counted as agreement.")] = 1e-6,
) -> None:
    """Compare the shadow version with the live one: agreement, differences, latency (JSON)."""
    output.print_json(state(ctx).client().deployments.shadow_comparison(name, parse_duration(window), tolerance))
