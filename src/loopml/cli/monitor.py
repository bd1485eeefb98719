"""`loopml monitor ...` <-> `client.monitors` (create, list, run, windows, report, alerts).

loopml monitor create bike --deployment bike-demand --window 1d --labels delay=2d
loopml monitor run bike && loopml monitor report bike --html report.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.domain.monitoring import Monitor, alert_to_json, monitor_to_json, window_to_json
from loopml.errors import InvalidInput

app = typer.Typer(help="Monitors over live traffic: drift, late labels, alerts, reports.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Monitor name.")]


def _labels(text: str | None) -> tuple[str, dict[str, Any]]:
    """`delay=2d[,key=COLUMN][,horizon=7d]` -> (label delay, monitor options)."""
    delay = "0s"
    options: dict[str, Any] = {}
    for part in filter(None, (text or "").split(",")):
        name, _, value = part.partition("=")
        if name.strip() == "delay" and value:
            delay = value.strip()
        elif name.strip() == "key" and value:
            options["key_column"] = value.strip()
        elif name.strip() == "horizon" and value:
            options["label_horizon"] = value.strip()
        else:
            raise InvalidInput(f"--labels takes delay=DURATION[,key=COLUMN][,horizon=DURATION], got {part!r}")
    return delay, options


def _window(monitor: Monitor) -> str:
    return f"{monitor.window_rows} requests" if monitor.window_rows is not None else f"{monitor.window_seconds}s"


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArgument,
    deployment: Annotated[str, typer.Option(help="The deployment whose request log to watch.")],
    window: Annotated[str, typer.Option(help="Tumbling window: a duration (1d, 6h) or a count of requests.")] = "1d",
    labels: Annotated[
        str | None,
        typer.Option(
            help="Late labels: delay=2d (wait before judging performance), key=COLUMN, horizon=7d (labels update a "
            "window until its end + horizon)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Consecutive breaching windows per alert.")] = 3,
    webhook: Annotated[str | None, typer.Option(help="URL the alerts are POSTed to (admin only).")] = None,
    model: Annotated[str | None, typer.Option(help="Pin the model (default: the one serving the window).")] = None,
    version: Annotated[int | None, typer.Option(help="Pin the version (with --model).")] = None,
    kinds: Annotated[
        str | None, typer.Option(help="Alert kinds, comma-separated: drift,prediction_drift,metric_drop,...")
    ] = None,
    time_field: Annotated[
        str | None, typer.Option(help="Window by this input field's time (event time), not by arrival.")
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="metric_drop compares with: registration, replaced, champion (comma-separated)."),
    ] = None,
    positive_class: Annotated[
        str | None,
        typer.Option(help="The positive class of binary precision, recall, F1 and ROC AUC (default: see docs)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Create a monitor of a deployment."""
    delay, options = _labels(labels)
    if time_field:
        options["time_field"] = time_field
    if baseline:
        options["baseline"] = [b.strip() for b in baseline.split(",") if b.strip()]
    if positive_class is not None:
        options["positive_class"] = positive_class
    monitor = (
        state(ctx)
        .client()
        .monitors.create(
            name,
            deployment,
            window,
            delay,
            k,
            model=model,
            version=version,
            webhook=webhook,
            kinds=[x.strip() for x in kinds.split(",")] if kinds else None,
            options=options or None,
        )
    )
    if json:
        output.print_json(monitor_to_json(monitor))
    else:
        output.stdout().print(f"monitor {monitor.name}: deployment {monitor.deployment}, window {_window(monitor)}")


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List monitors."""
    monitors = state(ctx).client().monitors.list()
    if json:
        output.print_json([monitor_to_json(m) for m in monitors])
        return
    output.table(
        None,
        ["name", "deployment", "window", "label delay", "k", "webhook", "last run"],
        (
            [
                m.name,
                m.deployment,
                _window(m),
                f"{m.label_delay_seconds}s",
                m.consecutive,
                "yes" if m.webhook else "",
                output.iso_time(m.last_run_at),
            ]
            for m in monitors
        ),
    )


@app.command("run")
def run(ctx: typer.Context, name: NameArgument, json: JsonOption = False) -> None:
    """Compute the monitor's new complete windows, pending performance and alerts now."""
    result = state(ctx).client().monitors.run(name)
    if json:
        output.print_json(result)
        return
    console = output.stdout()
    console.print(
        f"monitor {name}: {result['windows']} new windows, {result['performance']} with performance; "
        f"{len(result['opened'])} alerts opened, {len(result['resolved'])} resolved; "
        f"{result.get('pending', 0)} requests pending (logged, not yet published)"
    )
    for problem in result["delivery_errors"]:
        output.stderr().print(f"webhook: {problem}")


@app.command("backfill")
def backfill(
    ctx: typer.Context,
    name: NameArgument,
    requests: Annotated[
        Path, typer.Option(help="Past requests, .parquet or .csv: one row per request, the answer in 'prediction'.")
    ],
    labels: Annotated[
        Path | None, typer.Option(help="Their labels, .parquet or .csv: label plus request_id or key.")
    ] = None,
    prediction_column: Annotated[
        str | None, typer.Option(help="The column with the model's answers (default: prediction).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Build a new monitor's windows from files of past requests and labels (a backtest, without serving)."""
    result = state(ctx).client().monitors.backfill(name, requests, labels, prediction_column=prediction_column)
    if json:
        output.print_json(result)
        return
    output.stdout().print(
        f"monitor {name}: {result['windows']} windows backfilled, {result['performance']} with performance; "
        f"{len(result['opened'])} alerts opened, {len(result['resolved'])} resolved"
    )
    for problem in result["delivery_errors"]:
        output.stderr().print(f"webhook: {problem}")


@app.command("windows")
def windows(
    ctx: typer.Context,
    name: NameArgument,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest windows to show.")] = 50,
    json: JsonOption = False,
) -> None:
    """The monitor's newest windows: rows, drift, performance and breaches."""
    found = state(ctx).client().monitors.windows(name, limit)
    if json:
        output.print_json([window_to_json(w) for w in found])
        return
    kinds = sorted({key for w in found for key in w.breaches})
    output.table(
        None,
        ["start", "requests", "labelled", "drifted share", *kinds],
        (
            [
                output.iso_time(w.start_time),
                w.rows,
                w.labelled_rows,
                output.number((w.drift or {}).get("drifted_share")),
                *(_flag(w.breaches.get(kind)) for kind in kinds),
            ]
            for w in found
        ),
    )


def _flag(value: bool | None) -> str:
    return "" if value is None else ("BREACH" if value else "ok")


@app.command("report")
def report(
    ctx: typer.Context,
    name: NameArgument,
    html: Annotated[Path, typer.Option("--html", help="Write the self-contained HTML report here.")],
) -> None:
    """Write the HTML report: distributions, drift over time, performance over time."""
    state(ctx).client().monitors.report(name, html)
    output.stdout().print(f"wrote {html}")


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this monitor's alerts.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open alerts.")] = False,
    json: JsonOption = False,
) -> None:
    """Alerts raised by monitors."""
    found = state(ctx).client().monitors.alerts(name, "open" if open_only else None)
    if json:
        output.print_json([alert_to_json(a) for a in found])
        return
    output.table(
        None,
        ["monitor", "kind", "state", "first window", "last window", "delivered", "last error"],
        (
            [
                a.monitor,
                a.kind,
                a.state,
                output.iso_time(a.first_window),
                output.iso_time(a.last_window),
                "yes" if a.delivered else "no",
                a.last_error or "",
            ]
            for a in found
        ),
    )
