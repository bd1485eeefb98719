"""Validation of user-supplied relative artifact paths ("plots/fi.png", "model/model.skops")."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from loopml.errors import InvalidPath

__all__ = ["MAX_PATH_LENGTH", "MAX_SEGMENT_LENGTH", "sanitize_path"]

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255

_ALLOWED = (
    "use a relative path of '/'-separated names, e.g. 'plots/fi.png', "
    f"at most {MAX_PATH_LENGTH} characters with names of at most {MAX_SEGMENT_LENGTH}"
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_FORBIDDEN_CHARS = {"\\": "a backslash", "#": "'#'", ";": "';'", "?": "'?'", ":": "':'"}
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REPLACEMENT = "\ufffd"


def _reject(name: str, problem: str) -> InvalidPath:
    return InvalidPath(f"invalid artifact path {name!r}: {problem}; {_ALLOWED}")


def sanitize_path(name: str) -> str:
    """Validate a relative artifact path and return it decoded and normalised.

    The input is percent-decoded exactly once; anything that would decode again (`%252e`) is rejected.
    A ':' is rejected anywhere, not only in a leading URL scheme or drive letter, because on Windows it
    also opens alternate data streams (`model.skops:hidden`).

    The decoded name must be valid UTF-8: a lone surrogate (a file name in another encoding, decoded by
    Python with `surrogateescape`) and U+FFFD (what a lenient decoder leaves in place of bytes that are not
    UTF-8) are rejected, so two different byte strings never end up as one name. The name is then
    NFC-normalised, so the composed and decomposed spellings of "café" are one name. Bidirectional
    override and isolate characters (U+202A-U+202E, U+2066-U+2069), which make a name read differently
    from what it is, are rejected.

    >>> sanitize_path("plots/fi%20importance.png")
    'plots/fi importance.png'
    """
    if not isinstance(name, str) or not name:
        raise _reject(str(name), "it is empty")
    if len(name) > 3 * MAX_PATH_LENGTH:  # bound the work before decoding
        raise _reject(name[:64] + "...", "it is too long")
    try:
        path = unquote(name, errors="strict")
    except UnicodeDecodeError:
        raise _reject(name, "its percent-escapes do not decode to UTF-8") from None
    if "%" in path and unquote(path) != path:
        raise _reject(name, "it is percent-encoded more than once")
    if any(unicodedata.category(ch) == "Cs" for ch in path) or _REPLACEMENT in path:
        raise _reject(name, "it is not valid UTF-8 (a name in another encoding, or U+FFFD left by a decoder)")
    if _BIDI_CONTROLS.intersection(path):
        raise _reject(name, "it contains a bidirectional control character (U+202A-U+202E, U+2066-U+2069)")
    path = unicodedata.normalize("NFC", path)
    if not path:
        raise _reject(name, "it is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise _reject(name[:64] + "...", f"it is longer than {MAX_PATH_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        raise _reject(name, "it contains a NUL or another control character")
    if _SCHEME.match(path):
        raise _reject(name, "it starts with a URL scheme or a drive letter")
    for char, label in _FORBIDDEN_CHARS.items():
        if char in path:
            raise _reject(name, f"it contains {label}")
    if path.startswith("/"):
        raise _reject(name, "it is absolute")
    segments = path.split("/")
    if segments[0].startswith("~"):
        raise _reject(name, "it starts with '~' (a home directory)")
    for segment in segments:
        if not segment:
            raise _reject(name, "it has an empty name ('a//b' or a trailing '/')")
        if segment in (".", ".."):
            raise _reject(name, f"it has a {segment!r} segment")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise _reject(name, f"a name is longer than {MAX_SEGMENT_LENGTH} characters")
    return "/".join(segments)
