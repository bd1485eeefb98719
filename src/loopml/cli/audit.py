"""`loopml audit ...` <-> `client.audit`: read and verify the hash-chained audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.client import Client
from loopml.domain.wire import audit_to_json

app = typer.Typer(help="The audit log: one hash-chained row per mutation.", no_args_is_help=True)

PAGE = 1000


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the hash chain: exit 0 when intact, else print every problem and exit 1."""
    client = state(ctx).client()
    problems = client.audit.verify()
    if problems:
        err = output.stderr()
        for problem in problems:
            err.print(f"[red]audit problem:[/red] {problem}", soft_wrap=True)
        err.print(f"audit log broken: {len(problems)} problem(s)")
        raise typer.Exit(1)
    output.stdout().print(f"audit log intact: {_count(client)} events")


def _count(client: Client) -> int:
    count, after = 0, 0
    while events := client.audit.events(after_seq=after, limit=PAGE):
        count += len(events)
        after = events[-1].seq
    return count


@app.command("list")
def list_(
    ctx: typer.Context,
    after_seq: Annotated[int, typer.Option(min=0, help="Only events after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(min=1, help="Most events to print.")] = 100,
    actor: Annotated[str | None, typer.Option(help="Only this actor's events (token:ci, local:alice).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (deployment.update), or a prefix ending in a dot (model.).")
    ] = None,
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="Only events about this kind.")] = None,
    entity_id: Annotated[str | None, typer.Option("--entity-id", help="Only events about this entity.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="The newest events first.")] = False,
    json: JsonOption = False,
) -> None:
    """List audit events in order, optionally filtered."""
    events = (
        state(ctx)
        .client()
        .audit.events(
            after_seq=after_seq,
            limit=limit,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            newest_first=newest_first,
        )
    )
    if json:
        output.print_json([audit_to_json(e) for e in events])
        return
    output.table(
        None,
        ["seq", "time", "actor", "action", "entity", "hash"],
        (
            [e.seq, output.iso_time(e.time), e.actor, e.action, f"{e.entity_type} {e.entity_id}", e.hash[:12]]
            for e in events
        ),
    )
