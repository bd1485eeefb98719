"""`loopml tokens ...` <-> `client.tokens`.

Without a tracking URI they act on the local store: that is how an operator mints tokens for a server on
the same database (`LOOPML_DATABASE_URL=... loopml tokens create ci --role editor`).
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.domain.wire import token_to_json

app = typer.Typer(help="API tokens: create, list, revoke (admin only on a server).", no_args_is_help=True)


class RoleChoice(str, enum.Enum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name saying who or what uses the token (e.g. ci).")],
    role: Annotated[RoleChoice, typer.Option(help="What the token may do.")] = RoleChoice.viewer,
    project: Annotated[
        str | None, typer.Option(help="Limit the token to one project (default: every project).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Create a token and print its secret, once: it is stored hashed and cannot be shown again."""
    token, secret = state(ctx).client().tokens.create(name, role.value, project)
    if json:
        output.print_json({**token_to_json(token), "secret": secret})
    else:
        scope = f"project {token.project}" if token.project else "every project"
        output.stdout().print(f"created token {token.id} ({token.name}, {token.role.value}, {scope})")
        typer.echo(secret)
    output.stderr().print("[yellow]warning:[/yellow] store the secret now; it is not shown again")


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List tokens (never their secrets)."""
    tokens = state(ctx).client().tokens.list()
    if json:
        output.print_json([token_to_json(t) for t in tokens])
        return
    output.table(
        None,
        ["id", "name", "role", "project", "created", "revoked"],
        (
            [
                t.id,
                t.name,
                t.role.value,
                t.project or "*",
                output.iso_time(t.created_at),
                output.iso_time(t.revoked_at),
            ]
            for t in tokens
        ),
    )


@app.command("revoke")
def revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="Token id (not the secret).")]) -> None:
    """Revoke a token: requests with it are refused from now on."""
    token = state(ctx).client().tokens.revoke(token_id)
    output.stdout().print(f"revoked token {token.id} ({token.name})")
