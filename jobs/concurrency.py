"""Where blocking job code runs.

Job handlers call third parties with requests, which blocks, so each message
runs in a thread.  The worker installs a bounded executor per process; that
bound, not the number of messages waiting, decides how many run at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from contextvars import ContextVar
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
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


# Loops that live as long as their process: a worker's, daphne's.  Only
# these are handed sends and events to make later; a loop that ends when its
# work does (asyncio.run in a script) would drop them.
_serving: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def mark_serving(loop: asyncio.AbstractEventLoop) -> None:
    """Declare ``loop`` one that runs until its process stops, and flushes what it was handed first."""
    _serving.add(loop)


def unmark_serving(loop: asyncio.AbstractEventLoop) -> None:
    _serving.discard(loop)


class ServingLoop:
    """ASGI wrapper: the server's loop (daphne's) is marked serving on its first call."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        _serving.add(asyncio.get_running_loop())
        return await self.application(scope, receive, send)


def calling_loop() -> asyncio.AbstractEventLoop | None:
    """The serving loop of this thread, or the one that handed it its work (a job, a sync view); None if neither."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # run_blocking, and daphne's sync views: asgiref records the loop that called into the thread.
        if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
            return None
        loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
        if loop is None or loop.is_closed() or not loop.is_running():
            return None
    return loop if loop in _serving else None


# Coroutines waiting on one loop; past this the oldest are dropped (Redis is
# down or far behind): a job message dropped leaves its job to requeue, an
# event dropped is covered by the snapshot a socket gets.
MAX_HANDED_OVER = 10_000


class _HandedOver:
    """One loop's coroutines from hand_over(): run one at a time, in the order they came.

    One at a time: a request that queues 500 book lookups must not open 500
    Redis connections at once (the pool refuses past its bound); and a
    job's events and messages keep the order their commits gave them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiting: collections.deque[Callable[[], Coroutine[Any, Any, Any]]] = collections.deque()
        self.runner: asyncio.Task | None = None
        self.dropped = 0

    def add(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if len(self.waiting) >= MAX_HANDED_OVER:
            self.waiting.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("%d send(s) after commit dropped: the channel layer is not keeping up; "
                               "requeue and the sockets' snapshots cover them", self.dropped)
        self.waiting.append(make)
        if self.runner is None or self.runner.done():
            self.runner = self.loop.create_task(self._run())

    async def _run(self) -> None:
        # No await between the last check and the end: nothing added is missed.
        while self.waiting:
            try:
                await self.waiting.popleft()()
            except Exception:
                logger.error("A send handed over after commit failed", exc_info=True)


_handed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HandedOver] = weakref.WeakKeyDictionary()


def call_on(loop: asyncio.AbstractEventLoop, func: Callable[..., Any], *args: Any) -> None:
    """Call ``func(*args)`` on ``loop``: now if this is its thread, else as soon as it can."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        func(*args)
    else:
        loop.call_soon_threadsafe(func, *args)


def hand_over(make: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
    """Run ``make()`` on the calling loop without waiting for it; False (nothing started) with no loop.

    For sends that follow a commit: the job's thread, or the request's, goes
    on at once instead of hopping to the loop and back for each.  They run
    one after another, in order.
    """
    loop = calling_loop()
    if loop is None:
        return False
    handed = _handed.get(loop)
    if handed is None:
        handed = _handed[loop] = _HandedOver(loop)
    call_on(loop, handed.add, make)
    return True


async def settle_handed_over() -> None:
    """Wait for what was handed to this loop; for a process about to stop."""
    handed = _handed.get(asyncio.get_running_loop())
    if handed is not None and handed.runner is not None:
        await asyncio.shield(handed.runner)


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
