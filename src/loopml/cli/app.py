"""The root `loopml` command: global options, the lazily built `Client`, and the error boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from loopml.cli import output
from loopml.client import Client
from loopml.errors import AlreadyExists, InvalidInput, LoopmlError, NotFound, ResourceInUse

USER_MISTAKES = (InvalidInput, NotFound, AlreadyExists, ResourceInUse, PermissionError)
"""Errors that exit 2 (the caller asked for something wrong: bad input, something missing, a name taken, a
delete of what is in use, no permission), as Typer's usage errors do; others exit 1 (docs/cli.md)."""


@dataclass
class CliState:
    """What the root options chose; the client is built on first use, so `--help` never opens a store."""

    tracking_uri: str | None = None
    token: str | None = None
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.tracking_uri, token=self.token)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def exit_code(error: LoopmlError) -> int:
    return 2 if isinstance(error, USER_MISTAKES) else 1


class LoopmlGroup(TyperGroup):
    """Turns a `LoopmlError` from any subcommand into `error: <message>` on stderr, with no traceback."""

    # Typer always passes its own Context; the base class names the (vendored, private) click Context.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            try:
                return super().invoke(ctx)
            finally:
                if isinstance(ctx.obj, CliState):
                    ctx.obj.close()
        except LoopmlError as error:
            output.stderr().print(f"[red]error:[/red] {error.message}", markup=True, soft_wrap=True)
            raise typer.Exit(exit_code(error)) from None


app = typer.Typer(
    cls=LoopmlGroup,
    name="loopml",
    help=(
        "loopml: the whole MLOps loop in one tool. Data profiles, contracts and drift; experiment tracking;"
        " the model registry; serving replicas and batch scoring; deployments (direct, canary, shadow, A/B);"
        " monitoring and alerts; tokens and the audit log. Works on the embedded store (no server needed) or"
        " on a loopml server (--tracking-uri)."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
)


@app.callback()
def root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            envvar="LOOPML_TRACKING_URI",
            help="http(s):// URL of a loopml server (default: the embedded store under LOOPML_HOME).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="LOOPML_TOKEN", help="API token sent to the server.", show_default=False),
    ] = None,
) -> None:
    ctx.obj = CliState(tracking_uri=tracking_uri or None, token=token or None)


def state(ctx: typer.Context) -> CliState:
    return ctx.ensure_object(CliState)


def _register() -> None:
    from loopml.cli import audit, data, db, experiments, models, runs, serve, server, tokens

    app.command("server", help=server.serve.__doc__)(server.serve)
    app.command("serve", help=serve.serve.__doc__)(serve.serve)
    from loopml.cli import ui

    app.command("ui", help=ui.ui.__doc__)(ui.ui)
    app.add_typer(experiments.app, name="experiments")
    app.add_typer(runs.app, name="runs")
    app.add_typer(models.app, name="models")
    app.add_typer(tokens.app, name="tokens")
    app.add_typer(audit.app, name="audit")
    app.add_typer(db.app, name="db")
    app.add_typer(data.app, name="data")

    from loopml.cli import emit, import_mlflow, predict

    app.command("import-mlflow", help=import_mlflow.import_mlflow.__doc__)(import_mlflow.import_mlflow)

    app.command("emit", help=emit.emit.__doc__)(emit.emit)
    app.command("predict", help=predict.predict.__doc__)(predict.predict)

    from loopml.cli import deploy

    app.add_typer(deploy.app, name="deploy")

    from loopml.cli import monitor

    app.add_typer(monitor.app, name="monitor")

    from loopml.cli import pipelines, schedules  # schedules adds its commands to `loopml pipeline`

    app.add_typer(pipelines.app, name="pipeline")
    assert schedules.app is pipelines.app

    from loopml.cli import features

    app.add_typer(features.app, name="features")

    from loopml.cli import evaluate

    app.command("evaluate", help=evaluate.evaluate.__doc__)(evaluate.evaluate)
    app.command("gate", help=evaluate.gate.__doc__)(evaluate.gate)

    from loopml.cli import retrain

    app.add_typer(retrain.app, name="retrain")


_register()
