"""The artifact path sanitizer: property tests and the known attacks."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.artifacts import sanitize_path
from loopml.errors import InvalidPath

SAFE_CHARS = st.characters(categories=["L", "N"], include_characters="-_. +=@,()[]{}!$&'", exclude_characters="%")
segment = st.text(SAFE_CHARS, min_size=1, max_size=30).filter(lambda s: s not in {".", ".."})
valid_path = st.lists(segment, min_size=1, max_size=6).map("/".join).filter(lambda p: not p.startswith("~"))

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
    assert sanitize_path(path) == path
    assert sanitize_path(quote(path)) == path  # percent-encoded once is decoded once


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
