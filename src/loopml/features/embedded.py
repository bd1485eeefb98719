"""The process-wide `FeatureStore` behind `lm.features.*`: the embedded stores named by the settings."""

from __future__ import annotations

import atexit
import getpass
import os
import threading
from typing import TYPE_CHECKING

from loopml.domain import Principal, Role
from loopml.errors import InvalidInput
from loopml.settings import load_settings

if TYPE_CHECKING:
    from loopml.features.service import FeatureStore

_lock = threading.Lock()
_store: FeatureStore | None = None


def local_principal() -> Principal:
    try:
        actor = f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        actor = f"local:uid{os.getuid()}"
    return Principal(actor=actor, role=Role.ADMIN, project=None)


def feature_store() -> FeatureStore:
    """The feature store of this process, opened from the settings on first use."""
    global _store
    with _lock:
        if _store is None:
            _store = open_feature_store()
            atexit.register(reset)
        return _store


def open_feature_store() -> FeatureStore:
    from loopml.artifacts import open_artifact_store
    from loopml.features.online_store import open_online_store
    from loopml.features.service import FeatureStore
    from loopml.store import MetadataStore

    settings = load_settings()
    if settings.tracking_uri and settings.tracking_uri.startswith(("http://", "https://")):
        raise InvalidInput(
            "lm.features runs on the embedded store (LOOPML_HOME / LOOPML_DATABASE_URL); against a server, use "
            "lm.Client(...).features (apply, online, push, materialize), or unset LOOPML_TRACKING_URI"
        )
    home = settings.home
    return FeatureStore(
        MetadataStore.open(settings.resolved_database_url()),
        open_artifact_store(settings.resolved_artifact_root(), settings.s3_endpoint_url),
        lambda: open_online_store(settings.online_store, home),
        (home / "cache" / "features").resolve(),
        settings.default_project,
    )


def reset() -> None:
    """Close the process-wide store (the next call opens it again from the settings)."""
    global _store
    with _lock:
        if _store is not None:
            _store.close()
            _store.store.close()
            _store = None
