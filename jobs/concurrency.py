"""Where blocking job code runs.

Job handlers call third parties with requests, which blocks, so each message
runs in a thread.  The worker installs a bounded executor per process; that
bound, not the number of messages waiting, decides how many run at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from contextvars import ContextVar
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync

logger = logging.getLogger(__name__)

T = TypeVar("T")

blocking_executor: ContextVar[Executor | None] = ContextVar("blocking_executor", default=None)


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` in the worker's thread pool, closing stale DB connections around it.

    Not thread-sensitive on purpose: asgiref's default would run every job of
    the process on one shared thread, one at a time.
    """
    return await DatabaseSyncToAsync(func, thread_sensitive=False, executor=blocking_executor.get())(*args)


def fit_database_pool(concurrency: int, *, alias: str = "default") -> int | None:
    """Make the PostgreSQL pool big enough for ``concurrency`` job threads; return its size.

    A job holds its connection from claim to finish, gateway calls included,
    so a pool smaller than the thread count makes threads queue for
    connections and caps the worker below its ``--concurrency``.  Call it
    before the process first connects: the pool is built on first use.
    """
    from django.db import connections

    options = connections[alias].settings_dict.get("OPTIONS", {}).get("pool")
    if not isinstance(options, dict):
        return None
    # A thread per message, plus the event loop's own queries.
    needed = concurrency + 2
    if options.get("max_size", 0) < needed:
        logger.info("Database pool raised from %s to %s connections for --concurrency %s",
                    options.get("max_size"), needed, concurrency)
        options["max_size"] = needed
    return options["max_size"]
