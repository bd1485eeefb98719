"""Steps and pipelines the pipeline tests run. A module of its own, so worker processes can import them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import loopml as lm

SCALE = 10


def note(log: str, name: str) -> None:
    """Append `name` to the file `log`: how a test counts which steps really ran."""
    with open(log, "a") as f:
        f.write(name + "\n")


def double(x: float) -> float:
    return x * 2


@lm.step
def numbers(n: int, log: str) -> pd.DataFrame:
    note(log, "numbers")
    print(f"making {n} numbers")
    return pd.DataFrame({"x": np.arange(n, dtype="float64")})


@lm.step
def doubled_sum(df: pd.DataFrame, log: str) -> float:
    note(log, "doubled_sum")
    return float(double(df["x"].sum()))


@lm.step
def scaled(df: pd.DataFrame, log: str) -> np.ndarray:
    note(log, "scaled")
    return df["x"].to_numpy() * SCALE


@lm.step
def report(total: float, values: np.ndarray, log: str) -> dict[str, float]:
    note(log, "report")
    return {"total": total, "max": float(values.max())}


@lm.pipeline
def arithmetic(n: int = 5, log: str = os.devnull) -> Any:
    df = numbers(n, log)
    return report(doubled_sum(df, log), scaled(df, log), log)


@lm.step
def fragile(df: pd.DataFrame, flag: str, log: str) -> int:
    note(log, "fragile")
    if Path(flag).exists():
        raise RuntimeError(f"flag {flag} is up")
    return len(df)


@lm.step
def after_fragile(count: int, log: str) -> int:
    note(log, "after_fragile")
    return count + 1


@lm.pipeline
def branches(flag: str, log: str, n: int = 4) -> Any:
    df = numbers(n, log)
    tail = after_fragile(fragile(df, flag, log), log)
    return report(doubled_sum(df, log), scaled(df, log), log, after=[tail])


@lm.step(retries=2, retry_delay=0.05)
def flaky(marker: str) -> str:
    attempts = int(Path(marker).read_text()) if Path(marker).exists() else 0
    Path(marker).write_text(str(attempts + 1))
    if attempts < 2:
        raise ConnectionError(f"attempt {attempts + 1} lost its connection")
    return f"ok after {attempts + 1} attempts"


@lm.pipeline
def flaky_flow(marker: str) -> Any:
    return flaky(marker)


@lm.step(timeout=1)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@lm.step
def killed() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


@lm.step
def quick() -> int:
    return 1


@lm.pipeline
def hazards(seconds: float = 30) -> Any:
    return [sleepy(seconds), killed(), quick()]


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value


@lm.step
def opaque() -> Opaque:
    return Opaque(3)


@lm.step(pickle=True)
def opaque_opted_in() -> Opaque:
    return Opaque(4)


@lm.step
def unwrap(thing: Opaque) -> int:
    return thing.value


@lm.pipeline
def opaque_flow() -> Any:
    return unwrap(opaque())


@lm.pipeline
def pickled_flow() -> Any:
    return unwrap(opaque_opted_in())


@lm.step
def grid_point(depth: int, df: pd.DataFrame) -> float:
    return float(df["x"].sum() * depth)


@lm.step
def best(scores: list[float]) -> float:
    return max(scores)


@lm.pipeline
def grid(depths: list[int]) -> Any:
    df = numbers(6, os.devnull)
    return best(grid_point.map([{"depth": d} for d in depths], df=df))


def add_one(x: int) -> int:
    print(f"adding one to {x}")
    return x + 1


def fail(message: str) -> int:
    raise ValueError(message)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def make_opaque() -> Opaque:
    return Opaque(1)


@lm.step(cache=False)
def clock(log: str) -> int:
    note(log, "clock")
    return 1


@lm.step
def table(n: int) -> lm.Dataset:
    return lm.Dataset(pd.DataFrame({"x": np.arange(n)}), name="table", source="generated")


@lm.step
def rows(data: lm.Dataset, tick: int) -> int:
    return len(data) + tick


@lm.pipeline
def uncached(log: str, n: int = 3) -> Any:
    return rows(table(n), clock(log))
