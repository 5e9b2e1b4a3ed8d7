"""Run-once-at-a-time locks for periodic commands on several hosts."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Yield True if this process holds the lock ``name``, False if another does.

    On PostgreSQL a session advisory lock, so copies of a cron job on several
    hosts never work at the same time.  SQLite lives on one host and
    serialises writers itself, so there it is always granted.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = zlib.crc32(name.encode())  # a stable 32-bit key for the name
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
