"""Deployments: the current revision and its traffic split, the timeline of revisions and rollout decisions
(with each analysis's numbers), the shadow comparison, and for editors: promote, roll back, pause, resume,
each with a confirmation and a reason, through `DeployService` (audited as any other change)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from loopml.deploy import DeployService
from loopml.domain import Deployment, DeploymentRevision, Principal, RolloutDecision
from loopml.errors import InvalidInput
from loopml.ui.framework import Action, Session, UiRoute, UiSession, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

ANALYSIS_NUMBERS = (
    ("candidate_requests", "requests (candidate)"),
    ("stable_requests", "requests (stable)"),
    ("candidate_error_rate", "error rate (candidate)"),
    ("stable_error_rate", "error rate (stable)"),
    ("candidate_p99_ms", "p99 ms (candidate)"),
    ("stable_p99_ms", "p99 ms (stable)"),
    ("prediction_distance", "prediction distance"),
)
"""The numbers of a rollout decision the timeline shows in columns (all of them are in its details)."""


def _timeline(deploy: DeployService, principal: Principal, name: str) -> list[dict[str, Any]]:
    """Revisions and rollout decisions of `name`, newest first, as rows of one table."""
    rows: list[dict[str, Any]] = []
    revisions: list[DeploymentRevision] = deploy.history(principal, name, 200)
    decisions: list[RolloutDecision] = deploy.decisions(principal, name, 500)
    for r in revisions:
        split = ", ".join(f"{v.label} {v.role} {v.weight}%" for v in r.deployment.versions)
        rows.append(
            {"time": r.created_at, "kind": "revision", "what": f"revision {r.revision}: {r.deployment.state}",
             "detail": split, "actor": r.actor, "reason": r.reason, "numbers": None, "order": (r.created_at, 1)}
        )  # fmt: skip
    for d in decisions:
        rows.append(
            {"time": d.time, "kind": "decision", "what": f"step {d.step}: {d.outcome} -> {d.action}",
             "detail": "", "actor": "loopml:rollout-controller", "reason": d.reason, "numbers": d.metrics,
             "order": (d.time, 0)}
        )  # fmt: skip
    rows.sort(key=lambda row: row["order"], reverse=True)
    return rows


def _page_context(request: Request, session: UiSession, name: str) -> dict[str, Any]:
    deploy: DeployService = request.app.state.deploy
    current: Deployment = deploy.status(session.principal, name)
    shadow = None
    shadow_error = None
    if current.role("shadow") is not None:
        try:
            shadow = deploy.shadow_comparison(session.principal, name)
        except InvalidInput as error:
            shadow_error = error.message
    return {
        "deployment": current,
        "timeline": _timeline(deploy, session.principal, name),
        "numbers": ANALYSIS_NUMBERS,
        "shadow": shadow,
        "shadow_error": shadow_error,
        "actions": _actions(current) if session.may("editor") else [],
    }


def _actions(current: Deployment) -> list[tuple[str, str]]:
    """The changes that apply to the deployment now: (verb, label)."""
    found = []
    candidate = current.candidate
    if candidate is not None and (candidate.weight > 0 or candidate.role == "shadow"):
        found.append(("promote", f"Promote {candidate.label}"))
    found.append(("rollback", "Roll back"))
    if current.state == "progressing":
        found.append(("pause", "Pause the rollout"))
    if current.state == "paused":
        found.append(("resume", "Resume the rollout"))
    return found


@router.get("/deployments")
def deployments(request: Request, session: Session) -> Response:
    deploy: DeployService = request.app.state.deploy
    return render(request, session, "deployments.html", deployments=deploy.list(session.principal))


@router.get("/deployments/{name}")
def deployment(request: Request, session: Session, name: str) -> Response:
    return render(request, session, "deployment.html", **_page_context(request, session, name))


@router.get("/deployments/{name}/timeline")
def timeline(request: Request, session: Session, name: str) -> Response:
    """The state and timeline part of the page alone: the page's script reloads it while a rollout runs."""
    return render(request, session, "deployment_live.html", **_page_context(request, session, name))


@router.post("/deployments/{name}/{verb}")
def change(request: Request, action: Action, name: str, verb: str) -> Response:
    """Promote, roll back, pause or resume: the form must carry the CSRF token, a ticked confirmation and a
    reason; the service checks the role (a viewer's forged form gets 403) and records the change."""
    deploy: DeployService = request.app.state.deploy
    verbs: dict[str, Callable[[Principal, str, str | None], Deployment]] = {
        "promote": deploy.promote,
        "rollback": deploy.rollback,
        "pause": deploy.pause,
        "resume": deploy.resume,
    }
    if verb not in verbs:
        raise InvalidInput(f"no action {verb!r} on a deployment: promote, rollback, pause or resume")
    if action.get("confirm") != "yes":
        raise InvalidInput(f"tick the confirmation to {verb} deployment {name!r}")
    reason = action.get("reason").strip()
    if not reason:
        raise InvalidInput(f"say why you {verb} deployment {name!r}: the reason is kept in its history and audit log")
    verbs[verb](action.session.principal, name, reason)
    return RedirectResponse(f"/deployments/{urllib.parse.quote(name, safe='')}", status_code=303)
