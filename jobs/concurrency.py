"""Where blocking job code runs.

Job handlers call third parties with requests, which blocks, so each message
runs in a thread.  The worker installs a bounded executor per process; that
bound, not the number of messages waiting, decides how many run at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from contextvars import ContextVar
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync

T = TypeVar("T")

blocking_executor: ContextVar[Executor | None] = ContextVar("blocking_executor", default=None)


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` in the worker's thread pool, closing stale DB connections around it.

    Not thread-sensitive on purpose: asgiref's default would run every job of
    the process on one shared thread, one at a time.
    """
    return await DatabaseSyncToAsync(func, thread_sensitive=False, executor=blocking_executor.get())(*args)
