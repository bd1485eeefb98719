"""`loopml data ...`: profiles and data contracts of CSV / Parquet files, no server needed.

loopml data profile hour.csv --out profile.json
loopml data contract infer hour-2011.csv > contract.yaml
loopml data validate hour-2012.csv --contract contract.yaml     # exit 1 on a blocking violation
loopml data drift hour-2011.csv hour-2012.parquet                # exit 1 when the dataset drifts
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.options import JsonOption
from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.data import ColumnProfile, ContractReport, Profile
    from loopml.monitoring import ColumnDrift, DriftReport

app = typer.Typer(help="Data: profiles of datasets and data contracts (infer, validate).", no_args_is_help=True)
contract_app = typer.Typer(help="Data contracts: infer one from a reference dataset.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")

DataPath = Annotated[Path, typer.Argument(help="A .csv or .parquet file.", show_default=False)]


def _split(columns: str | None) -> list[str] | None:
    return [c.strip() for c in columns.split(",") if c.strip()] if columns else None


@app.command("profile")
def profile(
    path: DataPath,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the profile (JSON) to this file.")] = None,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns (default: all).")] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Most frequent categories kept per column.")] = 20,
    sample_size: Annotated[int, typer.Option(min=0, help="Sampled values kept per numeric column (for KS).")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    segment: Annotated[list[str] | None, typer.Option(help="Also profile each value of this column (repeat).")] = None,
    json: JsonOption = False,
) -> None:
    """Summarise a dataset: per column type, nulls, range, moments, quantile bins and top categories."""
    from loopml.data import build_profile

    result = build_profile(
        path, columns=_split(columns), top_k=top_k, sample_size=sample_size, seed=seed, segments=segment
    )
    if out is not None:
        out.write_text(result.to_json())
    if json:
        output.print_json(result.to_dict())
        return
    _profile_table(result)
    if out is not None:
        output.stdout().print(f"profile of {result.row_count} rows written to {out}")


def _profile_table(result: Profile) -> None:
    output.table(
        f"{result.row_count} rows",
        ["column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top values"],
        ([c.name, c.dtype, f"{c.null_rate:.2%}", c.distinct, *_numbers(c), _top(c)] for c in result.columns.values()),
    )


def _numbers(column: ColumnProfile) -> list[str]:
    if column.kind == "datetime" and column.min is not None and column.max is not None:
        return [output.iso_time(int(column.min * 1000)), output.iso_time(int(column.max * 1000)), "", ""]
    if column.kind != "numeric":
        return ["", "", "", ""]
    return [output.number(column.min), output.number(column.max), output.number(column.mean), output.number(column.std)]


def _top(column: ColumnProfile) -> str:
    if not column.categories:
        return ""
    shown = ", ".join(f"{key} ({count})" for key, count in list(column.categories.items())[:3])
    return shown + (" ..." if len(column.categories) > 3 or column.other_count else "")


@contract_app.command("infer")
def infer(
    path: Annotated[Path, typer.Argument(help="A .csv or .parquet file, or a profile .json.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the YAML here instead of stdout.")] = None,
    name: Annotated[str | None, typer.Option(help="Name written into the contract.")] = None,
    range_tolerance: Annotated[float, typer.Option(min=0, help="Widen each range by this share of its span.")] = 0.1,
    null_tolerance: Annotated[float, typer.Option(min=0, max=1, help="Null rate allowed over the reference's.")] = 0.05,
    max_age: Annotated[str | None, typer.Option(help="Add a freshness check, e.g. 2d, 12h.")] = None,
    freshness_column: Annotated[str | None, typer.Option(help="Datetime column of the freshness check.")] = None,
) -> None:
    """Infer a contract from a reference dataset; print it as YAML (edit it, then commit it)."""
    from loopml.data import Profile, infer_contract

    reference: Any = Profile.from_json(_read(path)) if path.suffix.lower() == ".json" else path
    contract = infer_contract(
        reference,
        name=name,
        range_tolerance=range_tolerance,
        null_tolerance=null_tolerance,
        max_age=max_age,
        freshness_column=freshness_column,
    )
    text = contract.to_yaml()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        output.stderr().print(f"contract with {len(contract.columns)} columns written to {out}")


@app.command("validate")
def validate(
    path: DataPath,
    contract: Annotated[Path, typer.Option("--contract", "-c", help="The contract (YAML).", show_default=False)],
    json: JsonOption = False,
) -> None:
    """Check a dataset against a contract; exit 1 if a blocking check fails (warnings exit 0)."""
    from loopml.data import Contract, validate_batch

    spec = Contract.from_yaml(_read(contract), source=str(contract))
    report = validate_batch(path, spec)
    if json:
        output.print_json(report.to_dict())
    else:
        _report_table(report)
    if not report.passed:
        raise typer.Exit(1)


def _report_table(report: ContractReport) -> None:
    console = output.stdout()
    if report.failures:
        output.table(
            None,
            ["severity", "check", "column", "failing", "message", "examples"],
            (
                [r.severity, r.check, r.column or "", f"{r.failing}/{r.total}", r.message, _examples(r.examples)]
                for r in report.failures
            ),
        )
    verdict = "[red]FAILED[/red]" if not report.passed else "[green]passed[/green]"
    console.print(
        f"{verdict}: {len(report.results)} checks on {report.rows} rows, "
        f"{len(report.blocking)} blocking, {len(report.warnings)} warnings"
    )


@app.command("drift")
def drift(
    reference: Annotated[
        Path, typer.Argument(help="The reference: a .csv or .parquet file, or a profile .json.", show_default=False)
    ],
    current: Annotated[Path, typer.Argument(help="The current data: a .csv or .parquet file.", show_default=False)],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns (default: every profiled one).")] = None,
    method: Annotated[
        list[str] | None, typer.Option(help="COLUMN=METHOD: psi, wasserstein, ks, chi_square, jensen_shannon (repeat).")
    ] = None,
    threshold: Annotated[list[str] | None, typer.Option(help="COLUMN=NUMBER: a column's threshold (repeat).")] = None,
    share_threshold: Annotated[
        float, typer.Option(min=0, max=1, help="Share of drifted columns at which the dataset drifts.")
    ] = 0.5,
    json: JsonOption = False,
) -> None:
    """Drift of CURRENT against REFERENCE, per column; exit 1 if the dataset drifts, 2 on bad input."""
    from loopml.data import Profile, build_profile
    from loopml.monitoring import dataset_drift

    profile = Profile.from_json(_read(reference)) if reference.suffix.lower() == ".json" else build_profile(reference)
    report = dataset_drift(
        profile,
        _data_file(current),
        columns=_split(columns),
        methods=_assignments(method, "--method", str),
        thresholds=_assignments(threshold, "--threshold", float),
        share_threshold=share_threshold,
    )
    if json:
        output.print_json(report.to_dict())
    else:
        _drift_table(report)
    if report.drifted:
        raise typer.Exit(1)


def _data_file(path: Path) -> Path:
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise InvalidInput(f"{path}: expected a .csv or .parquet file")
    return path


def _assignments(items: list[str] | None, option: str, kind: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        try:
            found[key.strip()] = kind(value.strip())
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise InvalidInput(f"{option} takes COLUMN=VALUE, got {item!r}")
    return found


def _drift_table(report: DriftReport) -> None:
    roles = [(report.prediction, "prediction"), (report.label, "label")]
    rows = [*((r, "") for r in report.columns), *((r, role) for r, role in roles if r is not None)]
    output.table(
        f"{report.n_cur} rows against a reference of {report.n_ref}",
        ["column", "method", "score", "threshold", "p-value", "drifted", "ref values", "current values", "note"],
        (_drift_row(r, role) for r, role in rows),
    )
    console = output.stdout()
    if report.missing_columns:
        console.print(f"missing from the current data: {', '.join(report.missing_columns)}")
    verdict = "[red]DRIFT[/red]" if report.drifted else "[green]no drift[/green]"
    scored = sum(r.note is None for r in report.columns)
    console.print(
        f"{verdict}: {len(report.drifted_columns)} of {scored} columns drifted "
        f"({report.drifted_share:.0%}; the dataset drifts at {report.share_threshold:.0%})"
    )


def _drift_row(r: ColumnDrift, role: str) -> list[object]:
    return [
        f"{r.column} ({role})" if role else r.column,
        r.method,
        output.number(r.score),
        output.number(r.threshold),
        "" if r.p_value is None else f"{r.p_value:.3g}",
        "yes" if r.drifted else "no",
        r.n_ref,
        r.n_cur,
        r.note or "",
    ]


def _examples(examples: list[dict[str, Any]]) -> str:
    return "; ".join(f"row {e['row']}: {e['value']!r}" for e in examples)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise InvalidInput(f"{path}: {error.strerror or error}") from None
