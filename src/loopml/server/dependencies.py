"""Request-scoped access to what `build_app` wired: the services and the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loopml.governance import GovernanceService
from loopml.registry import RegistryService
from loopml.settings import Settings
from loopml.tracking import TrackingService

__all__ = ["Governance", "Registry", "ServerSettings", "Tracking"]


def _tracking(request: Request) -> TrackingService:
    service: TrackingService = request.app.state.tracking
    return service


def _governance(request: Request) -> GovernanceService:
    service: GovernanceService = request.app.state.governance
    return service


def _registry(request: Request) -> RegistryService:
    service: RegistryService = request.app.state.registry
    return service


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Tracking = Annotated[TrackingService, Depends(_tracking)]
Governance = Annotated[GovernanceService, Depends(_governance)]
Registry = Annotated[RegistryService, Depends(_registry)]
ServerSettings = Annotated[Settings, Depends(_settings)]
