"""Values a step returns to say what its output is: `lm.Model` (a model package) and `lm.Dataset` (a
logged dataset version). Both wrap the object; the pipeline stores them with their own serializers."""

from __future__ import annotations

from typing import Any

from loopml.domain.validation import check_name


class Model:
    """A trained model a step returns, stored as a loopml model package (verified, registrable).

    `register="bike-demand"` makes the run register it as the next version of that model once the step
    finishes. A step receiving a Model gets it back loaded from its package: `predict` enforces the
    signature inferred from `input_example`.

    >>> import loopml as lm
    >>> lm.Model(object(), name="demo").name
    'demo'
    """

    def __init__(
        self,
        model: Any,
        *,
        name: str = "model",
        input_example: Any = None,
        flavor: str | None = None,
        register: str | None = None,
        package: Any = None,
        digest: str | None = None,
    ) -> None:
        self.native = model
        self.name = check_name("model", name)
        self.input_example = input_example
        self.flavor = flavor
        self.register = check_name("registered model", register) if register is not None else None
        self.package = package
        """The `LoadedModel` when this came from the artifact store (None when just trained)."""
        self.digest = digest
        """The sha256 of the package manifest, once stored."""

    def predict(self, data: Any) -> Any:
        if self.package is not None:
            return self.package.predict(data)
        return self.native.predict(data)

    def __repr__(self) -> str:
        return f"Model({type(self.native).__name__}, name={self.name!r})"


class Dataset:
    """A table a step returns as a dataset version: stored as Parquet, recorded by content hash, schema and
    rows, and linked to the step run that produced it and to every step run that reads it (lineage).

    >>> import pandas as pd
    >>> import loopml as lm
    >>> lm.Dataset(pd.DataFrame({"x": [1, 2]}), name="tiny").name
    'tiny'
    """

    def __init__(self, data: Any, *, name: str, source: str | None = None, digest: str | None = None) -> None:
        self.data = data
        self.name = check_name("dataset", name)
        self.source = source
        self.digest = digest
        """The dataset version's content hash, once stored."""

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, rows={len(self.data)})"
