"""Alembic environment: runs migrations on the engine handed over in `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from loopml.store.schema import metadata

engine = context.config.attributes.get("engine")

if context.is_offline_mode():  # pragma: no cover - `loopml db upgrade --sql` is not offered
    context.configure(url=str(engine.url) if engine else None, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    assert isinstance(engine, Engine), "pass the engine in config.attributes['engine']"
    with engine.connect().execution_options(loopml_write=True) as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
