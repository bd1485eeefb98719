"""Finding a pipeline by reference: `module:function` (importable) or `path/to/file.py:function`."""

from __future__ import annotations

import re
from pathlib import Path

from loopml.errors import InvalidPipeline
from loopml.pipelines.executor import load_module
from loopml.pipelines.graph import Pipeline

__all__ = ["load_pipeline"]

_MODULE = re.compile(r"^[A-Za-z_][\w.]*$")


def load_pipeline(reference: str) -> Pipeline[...]:
    """The `@lm.pipeline` object `reference` names: `package.module:nightly` or `examples/bike/pipeline.py:nightly`."""
    if not isinstance(reference, str) or reference.count(":") < 1:
        raise InvalidPipeline(f"a pipeline reference is module:function or path/to/file.py:function, got {reference!r}")
    where, _, name = reference.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise InvalidPipeline(f"pipeline file {where!r} does not exist")
        module_name = "loopml_pipeline_" + re.sub(r"\W", "_", path.resolve().with_suffix("").as_posix().strip("/"))
        try:
            module = load_module(module_name, str(path))
        except InvalidPipeline:
            raise
        except Exception as error:
            raise InvalidPipeline(f"importing {where} failed: {type(error).__name__}: {error}") from error
    elif _MODULE.match(where):
        try:
            module = load_module(where, None)
        except ImportError as error:
            raise InvalidPipeline(f"cannot import module {where!r}: {error}") from None
    else:
        raise InvalidPipeline(f"{where!r} is neither a module name nor a path to a .py file")
    found = getattr(module, name, None)
    if found is None:
        raise InvalidPipeline(f"{where} has no attribute {name!r}")
    if not isinstance(found, Pipeline):
        raise InvalidPipeline(f"{reference} is a {type(found).__name__}, not an @lm.pipeline function")
    return found
