"""The one gate every pickle-based load passes: an explicit opt-in, and never in a process that forbade it.

The API server calls `forbid_pickle_in_this_process` at startup; from then on no pickled model loads in that
process, whatever a caller passes. There is deliberately no way to lift the ban again.
"""

from __future__ import annotations

import os

from loopml.errors import PermissionDenied

__all__ = ["TRUST_PICKLE_ENV", "check_pickle_allowed", "forbid_pickle_in_this_process", "pickle_forbidden_reason"]

TRUST_PICKLE_ENV = "LOOPML_TRUST_PICKLE"

_forbidden_reason: str | None = None


def forbid_pickle_in_this_process(reason: str) -> None:
    """Refuse every pickle-based load in this process from now on (irreversible)."""
    global _forbidden_reason
    if _forbidden_reason is None:
        _forbidden_reason = reason


def pickle_forbidden_reason() -> str | None:
    """Why this process refuses pickle, or None when it does not."""
    return _forbidden_reason


def check_pickle_allowed(trust_pickle: bool) -> None:
    """Raise `PermissionDenied` unless pickle may be loaded here (`trust_pickle` or LOOPML_TRUST_PICKLE=1)."""
    if _forbidden_reason is not None:
        raise PermissionDenied(f"pickle loading is disabled in this process ({_forbidden_reason})")
    if trust_pickle or os.environ.get(TRUST_PICKLE_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return
    raise PermissionDenied(
        "this model is stored with pickle, which can run arbitrary code when loaded; "
        f"pass trust_pickle=True or set {TRUST_PICKLE_ENV}=1 if you trust its source"
    )
