"""The usual shapes of an answer, built from the converters of `loopml.domain.wire`: one object under a key,
a list under a key, a page of items, a JSON value as is, HTML."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from loopml.api.operation import Codec
from loopml.domain import MetricSeries, Page
from loopml.domain.metric_series import MEDIA_TYPE, decode_series, encode_series
from loopml.errors import RemoteError

__all__ = ["arguments_codec", "counted", "html", "listed", "one", "paged", "raw", "series_codec", "text"]

T = TypeVar("T")


def one(key: str, to_json: Callable[[T], dict[str, Any]], from_json: Callable[[dict[str, Any]], T]) -> Codec[T]:
    """`{key: object}`."""
    return Codec(lambda result, _: {key: to_json(result)}, lambda body: from_json(body[key]))


def listed(
    key: str, to_json: Callable[[T], dict[str, Any]], from_json: Callable[[dict[str, Any]], T]
) -> Codec[list[T]]:
    """`{key: [object, ...]}`."""
    return Codec(
        lambda result, _: {key: [to_json(item) for item in result]},
        lambda body: [from_json(item) for item in body[key]],
    )


def paged(key: str, to_json: Callable[[T], dict[str, Any]], from_json: Callable[[dict[str, Any]], T]) -> Codec[Page[T]]:
    """`{key: [object, ...], "next_page_token": str | null}`."""
    return Codec(
        lambda page, _: {key: [to_json(item) for item in page.items], "next_page_token": page.next_page_token},
        lambda body: Page([from_json(item) for item in body[key]], body["next_page_token"]),
    )


def raw(key: str, encode: Callable[[Any], Any] = lambda value: value) -> Codec[Any]:
    """`{key: value}` where the value is JSON already (after `encode`)."""
    return Codec(lambda result, _: {key: encode(result)}, lambda body: body[key])


def counted(key: str, field: str) -> Codec[None]:
    """`{key: len(arguments[field])}` for a write that answers nothing but how many it took."""
    return Codec(lambda _, arguments: {key: len(arguments[field])}, lambda _: None)


def text(media_type: str) -> Codec[str]:
    """A page of text (`text/html`), not JSON."""
    return Codec(lambda result, _: result, str, media_type=media_type)


html = text("text/html")


def arguments_codec(encode: Callable[[T, Mapping[str, Any]], Any], decode: Callable[[Any], T]) -> Codec[T]:
    """An answer built from the result and the call's arguments."""
    return Codec(encode, decode)


def _series_from_body(body: bytes) -> MetricSeries:
    try:
        return decode_series(body)
    except ValueError as error:  # the server sent something else: not the caller's mistake
        raise RemoteError(f"the server's metric series body is malformed: {error}") from None


series_codec: Codec[MetricSeries] = Codec(
    lambda series, _: encode_series(series), _series_from_body, media_type=MEDIA_TYPE
)
"""A `MetricSeries` as its binary body (`loopml.domain.metric_series`), not JSON."""
