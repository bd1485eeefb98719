"""Alembic migrations of the metadata schema; `upgrade_to_head` runs them programmatically."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

HERE = Path(__file__).parent


def _config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from loopml.store.migrations import _config as make

    head = ScriptDirectory.from_config(make(None)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return str(head)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
        return None if value is None else str(value)


def upgrade_to_head(engine: Engine) -> bool:
    """Migrate the database to the newest schema; True if anything ran. Cheap when already current."""
    if current_revision(engine) == LATEST:
        return False
    from alembic import command

    command.upgrade(_config(engine), "head")
    return True


LATEST = "0017_pipeops"
"""The newest revision id; kept in step with versions/ (a test checks it equals the Alembic head)."""
