"""What a user sees of the package as a whole: a cheap import, a pinned public API, one-way layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import loopml

SRC = Path(loopml.__file__).parent


def test_import_loopml_stays_free_of_heavy_libraries() -> None:
    code = (
        "import sys, loopml; "
        "heavy = sorted(m for m in ('pandas', 'sqlalchemy', 'fastapi', 'numpy', 'sklearn', 'pydantic', 'httpx') "
        "if m in sys.modules); print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_public_api_is_pinned() -> None:
    assert loopml.__all__ == sorted(loopml.__all__)
    assert loopml.__all__ == [
        "ActiveRun",
        "Client",
        "Dataset",
        "Model",
        "Run",
        "RunStatus",
        "__version__",
        "active_run",
        "end_run",
        "errors",
        "evaluate",
        "features",
        "gate",
        "get_client",
        "get_run",
        "lineage",
        "log_artifact",
        "log_artifacts",
        "log_dataset",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "models",
        "pipeline",
        "retrain",
        "search_runs",
        "set_tag",
        "set_tags",
        "set_tracking_uri",
        "start_run",
        "step",
    ]
    for name in loopml.__all__:
        assert getattr(loopml, name) is not None


# Which loopml packages each layer may import (DESIGN.md, "Layers and layout").
LEAVES = {"errors", "settings", "_lazy"}
DOMAIN = {"domain"}
PORTS = {"store", "artifacts"}
SERVICES = {
    "tracking",
    "registry",
    "data",
    "features",
    "serving",
    "deploy",
    "monitoring",
    "pipelines",
    "gates",
    "evaluation",
    "governance",
    "importer",
    "retraining",
}
INTERFACES = {"server", "cli", "client", "ui"}
OPERATION_TABLE = {"api"}
"""The operation table: an interface-level package that server and client import; it names services by string."""
ALLOWED = {
    "errors": set(),
    "settings": {"errors"},
    "_lazy": set(),
    "domain": {"errors"},
    **dict.fromkeys(PORTS, DOMAIN | LEAVES),
    **dict.fromkeys(SERVICES, DOMAIN | LEAVES | PORTS | SERVICES),
    "api": DOMAIN | LEAVES,
    **dict.fromkeys(INTERFACES, DOMAIN | LEAVES | PORTS | SERVICES | INTERFACES | OPERATION_TABLE),
}


def _loopml_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loopml."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("loopml."))
    return found


def test_dependencies_point_down_the_layers_only() -> None:
    violations = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if relative.name == "__init__.py" and len(relative.parts) == 1:
            continue  # the SDK entry point re-exports lazily from the interfaces
        package = relative.parts[0].removesuffix(".py")
        assert package in ALLOWED, f"{relative}: package {package!r} is in no layer; add it to DESIGN.md and here"
        for module in _loopml_imports(path):
            target = module.split(".")[1]
            if target != package and target not in ALLOWED[package]:
                violations.append(f"{relative} imports {module}")
    assert violations == []


def test_services_are_used_through_their_public_modules_only() -> None:
    violations = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        package = relative.parts[0].removesuffix(".py")
        if package not in SERVICES | INTERFACES:
            continue
        for module in _loopml_imports(path):
            parts = module.split(".")
            if parts[1] in SERVICES and parts[1] != package and len(parts) > 2:
                violations.append(f"{relative} imports {module}; use loopml.{parts[1]}")
    assert violations == []


def test_the_operation_table_imports_no_framework() -> None:
    """`loopml.api` is shared by the server and both clients: pydantic yes; FastAPI, httpx, SQLAlchemy no."""
    allowed_roots = set(sys.stdlib_module_names) | {"loopml", "pydantic"}
    for path in (SRC / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed_roots, f"api/{path.name} imports {name}"


def test_domain_imports_only_the_standard_library() -> None:
    allowed_roots = set(sys.stdlib_module_names) | {"loopml"}
    for path in (SRC / "domain").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed_roots, f"{path.name} imports {name}"
