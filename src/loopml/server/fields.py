"""Constrained field types for request bodies (the edge checks shape and bounds; services check meaning)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = ["INT32", "INT64", "ExperimentId", "Key", "Millis", "Name", "Text", "no_nul"]

INT64 = 2**63 - 1
INT32 = 2**31 - 1


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here so it is a 400, not a driver error.
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


Text = Annotated[str, Field(max_length=8000), AfterValidator(no_nul)]
"""A free-text value (param or tag value, dataset source, filter)."""

Name = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(no_nul)]
"""A name or key; the service applies the exact rules."""

Key = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(no_nul)]

Millis = Annotated[int, Field(ge=0, le=INT64)]
"""Milliseconds since the Unix epoch."""

ExperimentId = Annotated[int, Field(ge=0, le=INT32)]
"""Experiment ids are 32-bit in the store; a larger one is a 400 here, not a database error."""
