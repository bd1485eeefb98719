"""The artifact path sanitizer: property tests and the known attacks."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.artifacts import sanitize_path
from loopml.errors import InvalidPath

SAFE_CHARS = st.characters(categories=["L", "N"], include_characters="-_. +=@,()[]{}!$&'", exclude_characters="%")
segment = st.text(SAFE_CHARS, min_size=1, max_size=30).filter(lambda s: s not in {".", ".."})
valid_path = st.lists(segment, min_size=1, max_size=6).map("/".join).filter(lambda p: not p.startswith("~"))

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

HOSTILE = [
    "..",
    "/abs",
    "\\",
    "a\\b",
    "%2e%2e",
    "%2E%2E",
    "%252e%252e",
    "\x00",
    "a\x00b",
    "%00",
    "C:",
    "s3://x",
    "file:///etc/passwd",
    ".",
    "",
    "%2f",
]


def assert_harmless(path: str) -> None:
    segments = path.split("/")
    assert ".." not in segments
    assert "." not in segments
    assert "" not in segments
    assert not path.startswith("/")
    assert "\\" not in path
    assert "\x00" not in path
    assert not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", path)
    assert unicodedata.is_normalized("NFC", path)
    path.encode("utf-8")  # no lone surrogate
    assert "\ufffd" not in path
    assert not set(BIDI_CONTROLS) & set(path)


@given(st.text(max_size=60))
def test_whatever_is_accepted_is_harmless_and_stable(name: str) -> None:
    try:
        path = sanitize_path(name)
    except InvalidPath:
        return
    assert_harmless(path)
    assert sanitize_path(path) == path


@given(valid_path)
def test_valid_paths_round_trip(path: str) -> None:
    normal = unicodedata.normalize("NFC", path)
    assert sanitize_path(path) == normal
    assert sanitize_path(quote(path)) == normal  # percent-encoded once is decoded once


@given(st.binary(min_size=1, max_size=40))
def test_percent_encoded_bytes_are_decoded_strictly_or_refused(raw: bytes) -> None:
    """Two different byte strings never become one name: a name is the strict UTF-8 decoding, or refused."""
    try:
        path = sanitize_path(quote(raw, safe="/"))
    except InvalidPath:
        return
    assert path == unicodedata.normalize("NFC", raw.decode("utf-8"))  # strict: raises on invalid UTF-8


@given(st.binary(min_size=1, max_size=40).filter(lambda raw: not _is_utf8(raw)))
def test_invalid_utf8_is_refused_in_any_form(raw: bytes) -> None:
    with pytest.raises(InvalidPath, match="UTF-8"):
        sanitize_path(quote(raw, safe="/"))
    with pytest.raises(InvalidPath, match="UTF-8"):
        sanitize_path(raw.decode("utf-8", "surrogateescape"))  # a file name as Python reads it from disk
    with pytest.raises(InvalidPath, match="UTF-8"):
        sanitize_path(raw.decode("utf-8", "replace"))  # what a lenient decoder hands on


@given(valid_path, st.sampled_from(BIDI_CONTROLS), st.integers(min_value=0))
def test_a_bidirectional_control_anywhere_is_refused(path: str, control: str, where: int) -> None:
    at = where % (len(path) + 1)
    name = path[:at] + control + path[at:]
    with pytest.raises(InvalidPath, match="bidirectional"):
        sanitize_path(name)
    with pytest.raises(InvalidPath, match="bidirectional"):
        sanitize_path(quote(name))


@given(st.text(st.characters(categories=["L", "M", "N"]), min_size=1, max_size=30))
def test_canonically_equivalent_spellings_are_one_name(text: str) -> None:
    try:
        composed = sanitize_path(unicodedata.normalize("NFC", text))
    except InvalidPath:
        return
    assert sanitize_path(unicodedata.normalize("NFD", text)) == composed
    assert unicodedata.is_normalized("NFC", composed)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(
    st.lists(segment, max_size=3).map("/".join),
    st.sampled_from(HOSTILE),
    st.lists(segment, max_size=3).map("/".join),
)
def test_hostile_fragment_anywhere_is_rejected(before: str, fragment: str, after: str) -> None:
    name = "/".join(part for part in (before, fragment, after) if part or part is fragment)
    with pytest.raises(InvalidPath):
        sanitize_path(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plots/fi.png", "plots/fi.png"),
        ("model/model.skops", "model/model.skops"),
        ("a%20b.txt", "a b.txt"),
        ("100%.txt", "100%.txt"),
        ("dir/.hidden", "dir/.hidden"),
        ("a..b/c...d", "a..b/c...d"),
        ("a/~b", "a/~b"),
        ("données/μ.csv", "données/μ.csv"),
        ("cafe\u0301.csv", "caf\u00e9.csv"),  # NFD in, NFC out
        ("caf%65%CC%81.csv", "caf\u00e9.csv"),
        ("\u212bngstr\u00f6m", "\u00c5ngstr\u00f6m"),  # ANGSTROM SIGN is canonically A WITH RING
    ],
)
def test_accepted(name: str, expected: str) -> None:
    assert sanitize_path(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("..", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("./a", "'.'"),
        ("a/./b", "'.'"),
        ("a//b", "empty name"),
        ("a/", "empty name"),
        ("/etc/passwd", "absolute"),
        ("%2fetc%2fpasswd", "absolute"),
        ("C:/Windows", "drive letter"),
        ("c:x", "drive letter"),
        ("a\\b", "backslash"),
        ("..\\..\\x", "backslash"),
        ("a%5cb", "backslash"),
        ("a\x00b", "control"),
        ("a%00b", "control"),
        ("a\x1fb", "control"),
        ("a\x7fb", "control"),
        ("a\nb", "control"),
        ("a#b", "'#'"),
        ("a;b", "';'"),
        ("a?b", "'\\?'"),
        ("model/model.skops:hidden", "':'"),  # NTFS alternate data stream
        ("~/x", "home"),
        ("~root/.ssh/id_rsa", "home"),
        ("file:///etc/passwd", "scheme"),
        ("s3://bucket/key", "scheme"),
        ("http://169.254.169.254/latest", "scheme"),
        ("%2e%2e/x", "'..'"),
        ("a/%2E%2E/b", "'..'"),
        ("%252e%252e/x", "more than once"),
        ("%25252e", "more than once"),
        ("%ff", "UTF-8"),
        ("model%C3.skops", "UTF-8"),  # a truncated two-byte sequence
        ("%ED%A0%80", "UTF-8"),  # an encoded surrogate
        ("caf\udce9.csv", "UTF-8"),  # b"caf\xe9.csv" (Latin-1) decoded with surrogateescape
        ("model-\ufffd.bin", "UTF-8"),
        ("invoice\u202egpj.exe", "bidirectional"),  # shows as "invoiceexe.jpg"
        ("a%E2%80%AEb", "bidirectional"),
        ("a\u2066b\u2069", "bidirectional"),
        ("a\u037eb", "';'"),  # GREEK QUESTION MARK is canonically ';'
        ("x" * 1025, "longer than 1024"),
        ("a/" + "x" * 256, "longer than 255"),
    ],
)
def test_rejected(name: str, reason: str) -> None:
    with pytest.raises(InvalidPath, match=reason) as caught:
        sanitize_path(name)
    assert "relative path" in caught.value.message  # says what is allowed, too


def test_limits_are_inclusive() -> None:
    longest = "/".join(["x" * 255] * 3 + ["x" * 254, "y"])
    assert len(longest) == 1024
    assert sanitize_path(longest) == longest
    with pytest.raises(InvalidPath, match="longer than 1024"):
        sanitize_path(longest + "y")
