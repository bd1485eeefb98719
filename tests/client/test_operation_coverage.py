"""Every operation of the table has a conformance case: a test of tests/client that takes the `client` fixture
(so it runs on the embedded and the HTTP backend) and names the operation with `@pytest.mark.operations`.
The fixture checks that a test really sends what it names (tests/client/conftest.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from loopml.api import OPERATIONS

HERE = Path(__file__).parent


def _named_by_conformance_tests() -> dict[str, list[str]]:
    """Operation name -> the tests (on both backends) that name it."""
    named: dict[str, list[str]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            if "client" not in [argument.arg for argument in node.args.args]:
                continue  # not run on both backends
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.operations":
                    for argument in decorator.args:
                        assert isinstance(argument, ast.Constant), (
                            f"{path.name}::{node.name}: name operations literally"
                        )
                        named.setdefault(str(argument.value), []).append(f"{path.name}::{node.name}")
    return named


def test_every_operation_has_a_conformance_case() -> None:
    named = _named_by_conformance_tests()
    missing = sorted(set(OPERATIONS) - set(named))
    assert missing == [], f"operations without a conformance test on both backends: {missing}"


def test_conformance_tests_name_only_operations_of_the_table() -> None:
    unknown = sorted(set(_named_by_conformance_tests()) - set(OPERATIONS))
    assert unknown == []
