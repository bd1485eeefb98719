"""Deployment change notifications on PostgreSQL (LISTEN/NOTIFY), so a serving replica reloads a new revision
(a rollback, a canary step) at once instead of at its next poll. SQLite has no such channel: there, and
whenever the listening connection is lost, replicas keep polling."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, func, select

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEPLOYMENTS_CHANNEL", "DeploymentListener", "notify_deployment_changed"]

DEPLOYMENTS_CHANNEL = "loopml_deployments"
logger = logging.getLogger("loopml.store")


def notify_deployment_changed(conn: Connection, name: str) -> None:
    """Tell listeners that deployment `name` changed; delivered when the transaction commits, never if it
    rolls back."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(DEPLOYMENTS_CHANNEL, name)))


class DeploymentListener:
    """One connection of its own listening on the deployments channel; `wait` blocks until a change arrives
    or the timeout passes. A lost connection is reopened on the next `wait`."""

    def __init__(self, engine: Engine) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: psycopg.Connection[Any] | None = None

    def wait(self, timeout: float) -> bool:
        """True if a deployment changed within `timeout` seconds (several changes count as one)."""
        import psycopg

        try:
            conn = self._connection()
            changed = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
            while changed and any(True for _ in conn.notifies(timeout=0.001, stop_after=1)):
                pass  # a burst of changes (a canary step writes one revision) needs one reload
            return changed
        except psycopg.Error:
            logger.warning("lost the deployment change channel; polling until it is back", exc_info=True)
            self.close()
            time.sleep(timeout)  # the caller polls meanwhile; do not spin on a database that is down
            return False

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
            conn.execute(f"LISTEN {DEPLOYMENTS_CHANNEL}")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
