"""Constrained field types of request models (the edge checks shape and bounds; services check meaning)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, Strict

__all__ = ["INT32", "INT64", "ExperimentId", "Integer", "Key", "Millis", "Name", "Number", "Text", "no_nul"]

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

Integer = Annotated[int, Strict()]
"""An integer of a JSON body: a JSON integer only. Pydantic's lax mode would take `true` as 1, `"5"` as 5 and
`5.0` as 5; the OpenAPI document says `integer`, so the server takes what it says. Every integer field of a
body is an `Integer` (query and path parameters arrive as text and stay lax)."""

Number = Annotated[float, Strict()]
"""A number of a JSON body: a JSON integer or fraction, never `true` or `"1.5"`."""

Millis = Annotated[Integer, Field(ge=0, le=INT64)]
"""Milliseconds since the Unix epoch."""

ExperimentId = Annotated[Integer, Field(ge=0, le=INT32)]
"""Experiment ids are 32-bit in the store; a larger one is a 400 here, not a database error."""
