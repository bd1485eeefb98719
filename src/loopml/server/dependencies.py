"""Request-scoped access to what `build_app` wired, for the hand-written endpoints (the routes of the operation
table take their service from `app.state` by the name the table gives)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loopml.deploy import DeployService
from loopml.governance import GovernanceService
from loopml.monitoring import MonitoringService
from loopml.registry import LoggedModelService, RegistryService
from loopml.settings import Settings
from loopml.tracking import TrackingService

__all__ = ["Deploy", "Governance", "LoggedModels", "Monitoring", "Registry", "ServerSettings", "Tracking"]


def _tracking(request: Request) -> TrackingService:
    service: TrackingService = request.app.state.tracking
    return service


def _governance(request: Request) -> GovernanceService:
    service: GovernanceService = request.app.state.governance
    return service


def _registry(request: Request) -> RegistryService:
    service: RegistryService = request.app.state.registry
    return service


def _logged_models(request: Request) -> LoggedModelService:
    service: LoggedModelService = request.app.state.logged_models
    return service


def _deploy(request: Request) -> DeployService:
    service: DeployService = request.app.state.deploy
    return service


def _monitoring(request: Request) -> MonitoringService:
    service: MonitoringService = request.app.state.monitoring
    return service


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Tracking = Annotated[TrackingService, Depends(_tracking)]
Governance = Annotated[GovernanceService, Depends(_governance)]
Registry = Annotated[RegistryService, Depends(_registry)]
LoggedModels = Annotated[LoggedModelService, Depends(_logged_models)]
Deploy = Annotated[DeployService, Depends(_deploy)]
Monitoring = Annotated[MonitoringService, Depends(_monitoring)]
ServerSettings = Annotated[Settings, Depends(_settings)]
