"""Background workers inside the server process, for the in-memory layer.

With no Redis, a separate worker process could never see the server's
channels, so the server runs the same worker as ``runworker`` on its own
event loop.  Daphne has no start-up hook, so the worker starts with the
first connection of any kind.

Nor could a separate ``requeue`` reach those channels, so the server runs
the same requeue service itself: once at start, for everything unfinished
(a server killed mid-job left it, and nothing else can be running it), then
periodically, as cron would.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import timedelta

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)


class EmbeddedWorkers:
    """The ASGI application, plus a worker on every background channel, started by the first connection."""

    def __init__(self, application):
        self.application = application
        self.worker = None
        self.task: asyncio.Task | None = None
        self.requeuing: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if self.worker is None:
            self.start()
        return await self.application(scope, receive, send)

    def start(self) -> None:
        from jobs.worker import JobWorker
        from routing import channel_routes

        channels = list(channel_routes)
        self.worker = JobWorker(
            application=self.application,
            channels=channels,
            channel_layer=get_channel_layer(),
            concurrency=max(settings.WORKER_CONCURRENCY, len(channels)),
        )
        # A fresh context: the worker must not inherit this request's.
        self.task = asyncio.get_running_loop().create_task(self.worker.run(), context=contextvars.Context())
        self.requeuing = asyncio.get_running_loop().create_task(self.requeue_forever(), context=contextvars.Context())
        logger.info("Embedded workers consuming %s in the server process", ", ".join(channels))

    async def requeue_forever(self) -> None:
        """Send stuck work again, as the cron ``requeue`` does beside separate workers."""
        from jobs.requeue import requeue_stuck

        older_than = timedelta(0)
        while True:
            try:
                await sync_to_async(requeue_stuck, thread_sensitive=False)(older_than=older_than)
            except Exception:
                # The database may be away for a moment: the next round tries again.
                logger.error("Embedded requeue failed; trying again in %ss", settings.EMBEDDED_REQUEUE_INTERVAL,
                             exc_info=True)
            older_than = timedelta(seconds=settings.EMBEDDED_REQUEUE_OLDER_THAN)
            await asyncio.sleep(settings.EMBEDDED_REQUEUE_INTERVAL)

    async def stop(self) -> int:
        """Stop receiving, let what runs finish; how many messages were left unfinished."""
        if self.worker is None or self.task is None:
            return 0
        if self.requeuing is not None:
            self.requeuing.cancel()
        self.worker.stop()
        return await self.task

