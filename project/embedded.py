"""Background workers inside the server process, for the in-memory layer.

With no Redis, a separate worker process could never see the server's
channels, so the server runs the same worker as ``runworker`` on its own
event loop.  Daphne has no start-up hook, so the worker starts with the
first connection of any kind.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)


class EmbeddedWorkers:
    """The ASGI application, plus a worker on every background channel, started by the first connection."""

    def __init__(self, application):
        self.application = application
        self.worker = None
        self.task: asyncio.Task | None = None

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
        logger.info("Embedded workers consuming %s in the server process", ", ".join(channels))

    async def stop(self) -> int:
        """Stop receiving, let what runs finish; how many messages were left unfinished."""
        if self.worker is None or self.task is None:
            return 0
        self.worker.stop()
        return await self.task

