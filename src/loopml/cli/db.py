"""`loopml db upgrade`: migrate the metadata store to the newest schema."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output
from loopml.errors import InvalidInput
from loopml.settings import load_settings

app = typer.Typer(help="The metadata database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    database_url: Annotated[
        str | None,
        typer.Option(help="Database to migrate (default: LOOPML_DATABASE_URL, else SQLite under LOOPML_HOME)."),
    ] = None,
) -> None:
    """Run the schema migrations up to the newest revision; prints the revision before and after."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from loopml.store.engine import create_store_engine
    from loopml.store.migrations import LATEST, current_revision, upgrade_to_head

    url = database_url or load_settings().resolved_database_url()
    try:
        engine = create_store_engine(url)
    except ArgumentError as exc:
        raise InvalidInput(f"not a database URL: {url!r} ({exc})") from None
    try:
        before = current_revision(engine)
        ran = upgrade_to_head(engine)
        after = current_revision(engine)
    except SQLAlchemyError as exc:
        raise InvalidInput(f"cannot migrate {engine.url.render_as_string(hide_password=True)}: {exc}") from None
    finally:
        engine.dispose()
    if ran:
        output.stdout().print(f"upgraded {before or 'empty database'} -> {after}")
    else:
        output.stdout().print(f"already at the newest revision {after or LATEST}")
