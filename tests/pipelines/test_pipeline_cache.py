"""Cache keys: changing any one thing a key covers misses, and nothing else does.

The step under test lives in a real module file that imports a helper module and a real installed package
(a distribution written into a site directory of the test), so the key is computed by walking real code.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.pipelines import ArtifactRef, components_of, explain_miss, key_of
from loopml.pipelines import cache as cache_module

PACKAGE = "lmcachefixturepkg"


@dataclass(frozen=True)
class Scenario:
    helper: str = "return x * 2"
    unrelated: str = "return x + 1"
    comment: str = "# about this module"
    param: int = 3
    data: bytes = bytes(range(64))
    version: str = "1.0.0"


KEY_INPUTS = {"helper", "param", "data", "version"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A site directory holding an installed distribution `lmcachefixturepkg`, on sys.path."""
    root = tmp_path_factory.mktemp("site") / "site-packages"
    root.mkdir()
    (root / PACKAGE).mkdir()
    (root / PACKAGE / "__init__.py").write_text("def value():\n    return 1\n")
    info = root / f"{PACKAGE}-1.0.0.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text(PACKAGE + "\n")
    (info / "RECORD").write_text(f"{PACKAGE}/__init__.py,,\n")
    sys.path.insert(0, str(root))
    cache_module._distributions.cache_clear()
    yield root
    sys.path.remove(str(root))
    cache_module._distributions.cache_clear()


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    return open_artifact_store(str(tmp_path_factory.mktemp("blobs")))


def _install(site: Path, version: str) -> None:
    info = next(site.glob(f"{PACKAGE}-*.dist-info"))
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n")


def key_for(scenario: Scenario, site: Path, blobs: ArtifactStore) -> tuple[str, dict[str, object]]:
    """Write the scenario's code as fresh modules, import them, and compute the step's cache key."""
    _install(site, scenario.version)
    tag = "fixture"  # the same module names in every scenario, as in two runs of one project
    directory = site.parent / f"project_{uuid.uuid4().hex[:8]}"  # the user's code: not under site-packages
    directory.mkdir()
    for name in (f"helpers_{tag}", f"steps_{tag}"):
        sys.modules.pop(name, None)
    (directory / f"helpers_{tag}.py").write_text(
        f"{scenario.comment}\n\n\ndef clean(x):\n    {scenario.helper}\n\n\ndef unused(x):\n    {scenario.unrelated}\n"
    )
    (directory / f"steps_{tag}.py").write_text(
        f"import {PACKAGE}\nfrom helpers_{tag} import clean\n\n\n"
        f"def train(df, depth):\n    return clean(depth) + {PACKAGE}.value()\n"
    )
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module(f"steps_{tag}")
    finally:
        sys.path.remove(str(directory))
    blob = blobs.put_bytes(scenario.data)
    inputs = {"df": ArtifactRef("parquet", blob.digest, blob.size, "DataFrame")}
    components = components_of(module.train, {"depth": scenario.param}, inputs, None)
    return key_of(components), components


def _mutate(scenario: Scenario, change: str, byte: int, number: int) -> Scenario:
    if change == "helper":
        return replace(scenario, helper=f"return x * {number + 3}")
    if change == "param":
        return replace(scenario, param=scenario.param + number + 1)
    if change == "data":
        data = bytearray(scenario.data)
        data[byte % len(data)] ^= 1 << (number % 8)
        return replace(scenario, data=bytes(data))
    if change == "version":
        return replace(scenario, version=f"1.0.{number + 1}")
    if change == "unrelated":
        return replace(scenario, unrelated=f"return x - {number}")
    if change == "comment":
        return replace(scenario, comment=f"# changed {number}")
    return scenario


@settings(max_examples=25, deadline=None)
@given(
    change=st.sampled_from(["helper", "param", "data", "version", "unrelated", "comment", "nothing"]),
    byte=st.integers(min_value=0, max_value=10_000),
    number=st.integers(min_value=0, max_value=1000),
)
def test_changing_one_key_input_misses_and_nothing_else_does(
    site: Path, blobs: ArtifactStore, change: str, byte: int, number: int
) -> None:
    base = Scenario()
    before, _ = key_for(base, site, blobs)
    after, _ = key_for(_mutate(base, change, byte, number), site, blobs)
    assert (before != after) == (change in KEY_INPUTS), change


def test_a_miss_names_what_changed(site: Path, blobs: ArtifactStore) -> None:
    _, old = key_for(Scenario(), site, blobs)
    _, new_helper = key_for(Scenario(helper="return x * 3"), site, blobs)
    _, new_version = key_for(Scenario(version="2.0.0"), site, blobs)
    assert set(old["code"]) == {"steps_fixture:train", "helpers_fixture:clean"}  # type: ignore[call-overload]
    assert explain_miss("train", "steps_fixture:train", new_helper, old) == "miss: source of helper `clean` changed"
    assert explain_miss("train", "steps_fixture:train", new_version, old) == (
        f"miss: package `{PACKAGE}` changed (1.0.0 -> 2.0.0)"
    )
    assert old["packages"][PACKAGE] == "1.0.0"  # type: ignore[index]
