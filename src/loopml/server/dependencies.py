"""Request-scoped access to what `build_app` wired, for the hand-written endpoints (the routes of the operation
table take their service from `app.state` by the name the table gives)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loopml.governance import GovernanceService
from loopml.monitoring import MonitoringService
from loopml.settings import Settings
from loopml.tracking import TrackingService

__all__ = ["Governance", "Monitoring", "ServerSettings", "Tracking"]


def _tracking(request: Request) -> TrackingService:
    service: TrackingService = request.app.state.tracking
    return service


def _governance(request: Request) -> GovernanceService:
    service: GovernanceService = request.app.state.governance
    return service


def _monitoring(request: Request) -> MonitoringService:
    service: MonitoringService = request.app.state.monitoring
    return service


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Tracking = Annotated[TrackingService, Depends(_tracking)]
Governance = Annotated[GovernanceService, Depends(_governance)]
Monitoring = Annotated[MonitoringService, Depends(_monitoring)]
ServerSettings = Annotated[Settings, Depends(_settings)]
