"""Cache keys of step runs, and the reason a key missed.

A key is the sha256 of five parts: the source of the step and of every project function, class and
module-level constant it reaches (walking the names its code uses, transitively: a change in a helper
misses, unlike ZenML), its parameters, the content digests of its inputs, the serializers, and the versions
of the installed packages its code uses. "Project" means defined outside the standard library and
site-packages; loopml itself counts as a package.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import platform
import sys
import sysconfig
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any

import orjson

__all__ = ["code_fingerprint", "components_of", "explain_miss", "key_of"]

_CONSTANT = (bool, int, float, str, bytes, tuple, list, dict, set, frozenset, PurePath, type(None))
"""Module-level values whose repr stands for them in a key (a threshold, a feature list, a data path)."""


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(sys.base_prefix)
    return tuple(str(Path(r).resolve()) for r in roots)


@functools.cache
def _is_project_file(file: str | None) -> bool:
    if not file:
        return False
    resolved = Path(file).resolve()
    if {"site-packages", "dist-packages"} & set(resolved.parts):
        return False
    return not str(resolved).startswith(_installed_roots())


def _is_project_module(module_name: str) -> bool:
    """Whether code of this module is the user's: not loopml, not installed. Code whose module is not
    imported (exec'd, or typed into a REPL) is the user's too."""
    if module_name.split(".")[0] == "loopml":
        return False
    module = sys.modules.get(module_name)
    if module is None or module_name == "__main__":
        return True
    file = getattr(module, "__file__", None)
    return file is not None and _is_project_file(file)


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def package_version(module_name: str) -> tuple[str, str] | None:
    """(distribution, version) of the installed package providing `module_name`, None for the stdlib."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "__main__"):
        return None
    for distribution in _distributions().get(top, []):
        try:
            return distribution, metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _source_digest(obj: Any) -> str:
    try:
        return _digest(inspect.getsource(obj))
    except (OSError, TypeError):  # defined in exec'd code or a REPL: the compiled code stands in
        code = getattr(obj, "__code__", None)
        return _digest(marshal.dumps(code) if code is not None else repr(obj))


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


class _Walk:
    def __init__(self) -> None:
        self.code: dict[str, str] = {}
        self.packages: dict[str, str] = {}

    def package(self, module_name: str) -> None:
        found = package_version(module_name)
        if found is not None:
            self.packages[found[0]] = found[1]

    def function(self, function: Callable[..., Any]) -> None:
        function = getattr(function, "func", function)  # a Step: the function it wraps
        key = f"{function.__module__}:{function.__qualname__}"
        if key in self.code:
            return
        if not _is_project_module(function.__module__):
            self.package(function.__module__)
            return
        self.code[key] = _source_digest(function)
        namespace = function.__globals__
        names = set(_names(function.__code__))
        for name in sorted(names):
            if name in namespace:
                self.value(f"{function.__module__}:{name}", namespace[name], names)
        for cell in function.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self.value(f"{key}.<closure>", contents, names)

    def value(self, key: str, value: Any, names: set[str]) -> None:
        if isinstance(value, types.ModuleType):
            if _is_project_module(value.__name__):
                for attribute in sorted(names):  # `helpers.clean(...)`: the attributes the code names
                    if attribute in vars(value):
                        self.value(f"{value.__name__}:{attribute}", vars(value)[attribute], set())
            else:
                self.package(value.__name__)
        elif isinstance(value, types.FunctionType) or (hasattr(value, "func") and callable(value)):
            target = getattr(value, "func", value)
            if isinstance(target, types.FunctionType):
                self.function(target)
        elif isinstance(value, type):
            if _is_project_module(value.__module__):
                class_key = f"{value.__module__}:{value.__qualname__}"
                if class_key not in self.code:
                    self.code[class_key] = _source_digest(value)
                    for member in vars(value).values():
                        if isinstance(member, types.FunctionType):
                            self.function(member)
            else:
                self.package(value.__module__)
        elif isinstance(value, _CONSTANT) and key.split(":")[0] != "builtins":
            if _is_project_module(key.split(":")[0]):
                self.code[key] = _digest(_stable_repr(value))
        elif callable(value) and hasattr(value, "__module__"):
            self.package(str(value.__module__))


def _stable_repr(value: Any) -> str:
    """repr, with sets sorted: a set of strings iterates in an order that changes with the hash seed."""
    if isinstance(value, set | frozenset):
        return f"{type(value).__name__}({sorted(_stable_repr(v) for v in value)})"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}({[_stable_repr(v) for v in value]})"
    if isinstance(value, dict):
        return f"dict({[(_stable_repr(k), _stable_repr(v)) for k, v in value.items()]})"
    return repr(value)


_fingerprints: weakref.WeakKeyDictionary[Callable[..., Any], tuple[dict[str, str], dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def code_fingerprint(function: Callable[..., Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(code, packages): digests of the source of `function` and of the project code it reaches, and the
    versions of the packages that code uses. Kept per function object for the life of the process: a
    redefined or re-imported step is walked again."""
    function = getattr(function, "func", function)
    found = _fingerprints.get(function)
    if found is None:
        walk = _Walk()
        walk.function(function)
        walk.packages["python"] = platform.python_version()
        found = (walk.code, walk.packages)
        _fingerprints[function] = found
    return found


def components_of(
    function: Callable[..., Any],
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    output_serializer: str | None,
) -> dict[str, Any]:
    """What a step run's cache key is made of. `inputs` maps argument names to `ArtifactRef`s (or tuples of
    them, for a fan-in): their content digests and serializers count, not where they came from."""
    code, packages = code_fingerprint(function)
    digests: dict[str, Any] = {}
    serializers: dict[str, Any] = {}
    for name, ref in inputs.items():
        refs = ref if isinstance(ref, tuple) else (ref,)
        digests[name] = [r.digest for r in refs] if isinstance(ref, tuple) else ref.digest
        serializers[name] = [r.serializer for r in refs] if isinstance(ref, tuple) else ref.serializer
    return {
        "code": code,
        "params": dict(params),
        "inputs": digests,
        "serializers": {"output": output_serializer or "auto", "inputs": serializers},
        "packages": packages,
    }


def key_of(components: Mapping[str, Any]) -> str:
    return _digest(orjson.dumps(components, option=orjson.OPT_SORT_KEYS))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text[:12] if len(text) == 64 else (text if len(text) <= 40 else text[:37] + "...")


def explain_miss(step: str, function_key: str, now: Mapping[str, Any], before: Mapping[str, Any] | None) -> str:
    """Why `now` (the components of a key that missed) differs from `before` (the last finished run's)."""
    if before is None:
        return f"miss: no earlier finished run of step `{step}`"
    reasons: list[str] = []
    old_code, new_code = before.get("code", {}), now.get("code", {})
    for key in sorted(set(old_code) | set(new_code)):
        short = key.split(":", 1)[1] if ":" in key else key
        what = f"step `{step}`" if key == function_key else f"helper `{short}`"
        if key not in old_code:
            reasons.append(f"{what} is new in the code the step reaches")
        elif key not in new_code:
            reasons.append(f"{what} is no longer reached")
        elif old_code[key] != new_code[key]:
            reasons.append(f"source of {what} changed")
    for part, label in (
        ("params", "parameter"),
        ("inputs", "input"),
        ("packages", "package"),
        ("serializers", "serializer"),
    ):
        old, new = before.get(part, {}), now.get(part, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                reasons.append(f"{label} `{key}` changed ({_short(old.get(key))} -> {_short(new.get(key))})")
    if not reasons:
        return "miss: the outputs of the earlier run with this key are gone from the artifact store"
    return "miss: " + "; ".join(reasons)
