"""Django's PostgreSQL backend, whose pool sweeps itself once it meets a dead connection.

A server restart, a failover or ``pg_terminate_backend`` kills every
connection at once, and each one sits in the pool looking alive until it is
used.  Django gives the pool psycopg's check when ``CONN_HEALTH_CHECKS`` is
on, which finds them one ``getconn`` at a time, backing off 1, 2, 4… seconds
between tries: a pool holding a dozen dead connections times out
(``PoolTimeout`` after 10 s, a 500 for the request) before it reaches a live
one.  This check also checks every idle connection as soon as it meets one
dead one, so the next try gets a fresh connection.
"""

from __future__ import annotations

import logging

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

logger = logging.getLogger(__name__)


def check_connection(conn: psycopg.Connection) -> None:
    """psycopg's check; when it fails, the pool's other idle connections are checked too."""
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if pool is not None:
            logger.warning("A pooled database connection was dead; checking every idle one in %r", pool.name)
            # Takes the idle ones out and replaces the dead ones; this one is
            # out already, and getconn discards it when this raises.
            pool.check()
        raise


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool with psycopg's own check (CONN_HEALTH_CHECKS);
        # its constructor takes no other, so ours is installed on the pool it
        # built (psycopg_pool keeps it as ``_check``, pinned in requirements).
        if pool is not None and pool._check is not None and pool._check is not check_connection:
            pool._check = check_connection
        return pool
