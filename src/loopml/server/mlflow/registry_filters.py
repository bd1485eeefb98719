"""MLflow's filter and order-by strings for registered models and model versions, in loopml's search language.

MLflow names attributes bare (`name = 'fraud'`, `version_number > 2`, `run_id = '...'`); loopml's language
writes them `attributes.<name>`. `tags.<key>` is the same in both. The translation renames identifiers outside
quoted strings and backticks; everything else (operators, LIKE patterns, IN lists) is loopml's parser's, so an
MLflow filter compiles to the same SQL as a loopml search. What loopml cannot search is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from loopml.errors import InvalidFilter

__all__ = ["model_filter", "model_order_by", "version_filter", "version_order_by"]

_MODEL_NAMES = {
    "name": "attributes.name",
    "creation_timestamp": "attributes.created_at",
    "last_updated_timestamp": "attributes.updated_at",
    "timestamp": "attributes.updated_at",
}
_VERSION_NAMES = {
    "name": "attributes.name",
    "version_number": "attributes.version",
    "version": "attributes.version",
    "run_id": "attributes.run_id",
    "creation_timestamp": "attributes.created_at",
    "status": "attributes.status",
}
_UNSUPPORTED = {"source_path", "source", "model_id", "user_id", "current_stage", "description"}
# MLflow 3 clients add this clause to every registry search to hide prompts; loopml stores no prompts, so no
# model is one, and the clause is dropped (in loopml's language `!=` would also drop models without the tag).
_NOT_A_PROMPT = re.compile(
    r"(?:^|\s+AND\s+)tags?\.(?:`mlflow\.prompt\.is_prompt`|mlflow\.prompt\.is_prompt)\s*!=\s*'true'\s*",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|[A-Za-z_][A-Za-z0-9_]*|.", re.DOTALL)


def _translate(text: str, names: Mapping[str, str], what: str) -> str:
    out: list[str] = []
    previous = ""
    tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        bare = token[:1].isalpha() or token[:1] == "_"
        if bare and previous != "." and following != ".":
            key = token.lower()
            if key in names:
                token = names[key]
            elif key in _UNSUPPORTED:
                raise InvalidFilter(
                    f"loopml cannot search {what} by {token!r}; use {', '.join(sorted(names))} or tags.<key>"
                )
        out.append(token)
        if not token.isspace():
            previous = token
    return "".join(out)


def _without_prompt_clause(text: str | None) -> str | None:
    if not text:
        return None
    kept = _NOT_A_PROMPT.sub(" ", text).strip()
    return kept.removeprefix("AND ").removeprefix("and ").strip() or None


def model_filter(text: str | None) -> str | None:
    kept = _without_prompt_clause(text)
    return None if kept is None else _translate(kept, _MODEL_NAMES, "registered models")


def version_filter(text: str | None) -> str | None:
    kept = _without_prompt_clause(text)
    return None if kept is None else _translate(kept, _VERSION_NAMES, "model versions")


def model_order_by(clauses: Sequence[str]) -> list[str] | None:
    return [_translate(c, _MODEL_NAMES, "registered models") for c in clauses] or None


def version_order_by(clauses: Sequence[str]) -> list[str] | None:
    return [_translate(c, _VERSION_NAMES, "model versions") for c in clauses] or None
