"""`loopml models ...` <-> `client.models` (list, show, versions, alias, search-versions, delete, download,
import-mlflow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.client import Client
from loopml.domain import ModelVersion, RegisteredModel
from loopml.domain.wire import model_version_to_json, registered_model_to_json
from loopml.errors import InvalidInput

app = typer.Typer(help="Model registry: registered models, their versions and aliases.", no_args_is_help=True)

FilterOption = Annotated[str | None, typer.Option("--filter", help="A filter in the search language.")]
OrderByOption = Annotated[
    list[str] | None, typer.Option("--order-by", help="e.g. 'attributes.name' or 'metrics.rmse DESC'; repeatable.")
]
MaxResults = Annotated[int, typer.Option(min=1, max=50_000, help="Most results to return.")]


def _aliases(aliases: dict[str, int] | Sequence[str]) -> str:
    if isinstance(aliases, dict):
        return ", ".join(f"{alias}={version}" for alias, version in sorted(aliases.items()))
    return ", ".join(aliases)


def _models_table(models: Sequence[RegisteredModel]) -> None:
    output.table(
        None,
        ["name", "project", "latest", "aliases", "owner", "updated"],
        (
            [m.name, m.project, m.latest_version or "", _aliases(m.aliases), m.owner, output.iso_time(m.updated_at)]
            for m in models
        ),
    )


def _versions_table(versions: Sequence[ModelVersion]) -> None:
    metrics = sorted({key for v in versions for key in v.metrics})
    columns = ["name", "version", "status", "aliases", "flavor", "run id", "created"]
    columns += [f"metrics.{key}" for key in metrics]
    output.table(
        None,
        columns,
        (
            [v.name, v.version, v.status.value, _aliases(v.aliases), v.flavor, v.run_id, output.iso_time(v.created_at)]
            + [output.number(v.metrics.get(key)) for key in metrics]
            for v in versions
        ),
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    filter_: FilterOption = None,
    order_by: OrderByOption = None,
    max_results: MaxResults = 100,
    json: JsonOption = False,
) -> None:
    """List registered models (by name), e.g. --filter "tags.team = 'demand'"."""
    page = state(ctx).client().models.search(filter_, order_by or None, max_results)
    if json:
        output.print_json([registered_model_to_json(m) for m in page.items])
    else:
        _models_table(page.items)
    if page.next_page_token is not None:
        output.stderr().print(f"more models match; showing the first {max_results} (raise --max-results)")


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    json: JsonOption = False,
) -> None:
    """Show one model: description, tags, aliases and its newest versions."""
    client = state(ctx).client()
    model = client.models.get(name)
    versions = client.models.search_versions(f"attributes.name = '{_quote(name)}'", max_results=20).items
    if json:
        document = registered_model_to_json(model)
        document["versions"] = [model_version_to_json(v) for v in versions]
        output.print_json(document)
        return
    console = output.stdout()
    console.print(f"[bold]model[/bold] {model.name}  project {model.project}  owner {model.owner}")
    console.print(f"created {output.iso_time(model.created_at)}  updated {output.iso_time(model.updated_at)}")
    if model.description:
        console.print(model.description)
    output.pairs("tags", model.tags)
    output.pairs("aliases", dict(model.aliases))
    if versions:
        _versions_table(versions)
    _evaluations_and_gates(client, model.name)


def _evaluations_and_gates(client: Client, name: str) -> None:
    evaluations = client.evaluations.list(name, max_results=10)
    if evaluations:
        output.table(
            "evaluations",
            ["version", "id", "task", "rows", "data", "baseline", "metrics", "when"],
            (
                [
                    e.version,
                    e.id[:12],
                    e.task,
                    e.rows,
                    e.dataset_digest[:12],
                    e.baseline_version or "",
                    ", ".join(f"{k}={v:.4g}" for k, v in list(e.metrics.items())[:4]),
                    output.iso_time(e.created_at),
                ]
                for e in evaluations
            ),
        )
    results = client.gates.list(name, max_results=10)
    if results:
        output.table(
            "gate results",
            ["version", "id", "verdict", "failed checks", "policy", "when"],
            (
                [
                    g.version,
                    g.id[:12],
                    "passed" if g.passed else "failed",
                    ", ".join(c.name for c in g.failed)[:80],
                    g.policy_digest[:12],
                    output.iso_time(g.created_at),
                ]
                for g in results
            ),
        )
    guarded = client.gates.requirements(name)
    if guarded:
        output.stdout().print(f"aliases that require a passed gate: {', '.join(guarded)}")


def _quote(text: str) -> str:
    return text.replace("'", "''")


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    filter_: FilterOption = None,
    order_by: OrderByOption = None,
    json: JsonOption = False,
) -> None:
    """List the versions of a model, newest first, e.g. --filter "metrics.rmse < 45"."""
    found = state(ctx).client().models.versions(name, filter_, order_by or None)
    if json:
        output.print_json([model_version_to_json(v) for v in found])
    else:
        _versions_table(found)


@app.command("search-versions")
def search_versions(
    ctx: typer.Context,
    filter_: FilterOption = None,
    order_by: OrderByOption = None,
    max_results: MaxResults = 100,
    json: JsonOption = False,
) -> None:
    """Search versions of every model, e.g. --filter "attributes.flavor = 'sklearn' and metrics.rmse < 45"."""
    page = state(ctx).client().models.search_versions(filter_, order_by or None, max_results)
    if json:
        output.print_json([model_version_to_json(v) for v in page.items])
    else:
        _versions_table(page.items)
    if page.next_page_token is not None:
        output.stderr().print(f"more versions match; showing the first {max_results} (raise --max-results)")


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. champion.")],
    version: Annotated[int | None, typer.Argument(help="Version the alias moves to.", min=1)] = None,
    reason: Annotated[str | None, typer.Option(help="Why: recorded in the audit log.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead of moving it.")] = False,
    override_reason: Annotated[
        str | None,
        typer.Option(help="Admins: move an alias that requires a passed gate anyway, saying why (audited)."),
    ] = None,
) -> None:
    """Move ALIAS of model NAME to VERSION (atomically, audited), or remove it with --delete."""
    client = state(ctx).client()
    if delete:
        if version is not None:
            raise InvalidInput("give either a VERSION to move the alias to, or --delete, not both")
        previous = client.models.delete_alias(name, alias_name, reason)
        typer.echo(f"removed alias {alias_name} of {name} (it pointed at version {previous})")
        return
    if version is None:
        raise InvalidInput(
            f"give the version {alias_name} should point at, e.g. `loopml models alias {name} {alias_name} 3`"
        )
    moved = client.models.set_alias(name, alias_name, version, reason, override_reason)
    typer.echo(f"{name}@{alias_name} -> version {moved.version}")


@app.command("require-gate")
def require_gate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. champion.")],
    drop: Annotated[bool, typer.Option("--drop", help="Drop the requirement (admins).")] = False,
) -> None:
    """Make ALIAS of model NAME move only to versions whose newest gate passed (or drop that with --drop)."""
    guarded = state(ctx).client().gates.require(name, alias_name, not drop)
    typer.echo(f"aliases of {name} that require a passed gate: {', '.join(guarded) or 'none'}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int | None, typer.Option(min=1, help="Delete only this version.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a registered model with its versions, aliases and tags, or one version with --version. Refused
    (exit 2) while a deployment serves it, or, for a version, while an alias points at it."""
    client = state(ctx).client()
    what = f"version {version} of model {name!r}" if version is not None else f"model {name!r} and all its versions"
    if not yes:
        typer.confirm(f"delete {what}? This cannot be undone", abort=True)
    if version is None:
        client.models.delete(name)
    else:
        client.models.delete_version(name, version)
    typer.echo(f"deleted {what}")


@app.command("download")
def download(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or models:/... of the version.")],
    directory: Annotated[Path, typer.Argument(help="Where to write the package (created if missing).")],
) -> None:
    """Download a model version's package, verified file by file against the registry's digest."""
    target = state(ctx).client().models.download(reference, directory)
    typer.echo(f"downloaded {reference} to {target} (verified)")


@app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A local MLflow model directory (the one holding MLmodel).")],
    name: Annotated[str | None, typer.Option(help="Register the result as the next version of this model.")] = None,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="Allow pickle-based MLflow models (only from sources you trust).")
    ] = False,
) -> None:
    """Convert an MLflow model (sklearn, xgboost, lightgbm) into a loopml package and log it (and register it)."""
    logged = state(ctx).client().models.import_mlflow(source, name, trust_pickle=trust_pickle)
    typer.echo(f"imported {source}: {getattr(logged, 'uri', logged)}")
