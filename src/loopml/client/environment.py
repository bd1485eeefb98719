"""What a run records about where it ran: code version, entry point, interpreter and key packages."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = (
    "loopml",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "xgboost",
    "lightgbm",
    "torch",
    "onnxruntime",
    "pyarrow",
)


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def entry_point() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path:
        return str(Path(path).resolve())
    return sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"


def capture() -> dict[str, str]:
    """Tags `loopml.source.*`, `loopml.env.*` and `loopml.user` for a new run."""
    where = entry_point()
    directory = Path(where).parent if os.path.isfile(where) else Path.cwd()
    tags: dict[str, str] = {"loopml.source.entry_point": where}
    found = _git(directory, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")  # one process for commit and branch
    commit, _, branch = (found or "").partition("\n")
    if commit:
        tags["loopml.source.git_commit"] = commit
        status = _git(directory, "status", "--porcelain", "--untracked-files=no")
        tags["loopml.source.git_dirty"] = "true" if status else "false"
        if branch:
            tags["loopml.source.git_branch"] = branch
    tags["loopml.env.python"] = platform.python_version()
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    tags["loopml.env.packages"] = json.dumps(versions, sort_keys=True)
    with contextlib.suppress(KeyError, OSError):  # no passwd entry in some containers
        tags["loopml.user"] = getpass.getuser()
    return tags
