"""The pipelines benchmarks/pipelines.py times on loopml: trivial steps in a chain and in a fan-out.

Steps live at the top level of this module so worker processes (and Ray workers) import them by name.
"""

from __future__ import annotations

import loopml as lm


@lm.step
def inc(x: int) -> int:
    return x + 1


@lm.step
def total(values: list[int]) -> int:
    return sum(values)


@lm.pipeline
def chain(n: int) -> object:
    """n steps, each adding one to its predecessor's output: the answer is n."""
    x = inc(0)
    for _ in range(n - 1):
        x = inc(x)
    return x


@lm.pipeline
def fanout(n: int) -> object:
    """n independent steps `i + 1`, then one step summing them: the answer is n(n+1)/2."""
    return total(inc.map([{"x": i} for i in range(n)]))
