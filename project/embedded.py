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


def with_embedded_workers(application):
    from jobs.worker import JobWorker
    from routing import channel_routes

    started = False
    tasks: list[asyncio.Task] = []

    async def app(scope, receive, send):
        nonlocal started
        if not started:
            started = True
            channels = list(channel_routes)
            worker = JobWorker(
                application=application,
                channels=channels,
                channel_layer=get_channel_layer(),
                concurrency=max(settings.WORKER_CONCURRENCY, len(channels)),
            )
            # A fresh context: the worker must not inherit this request's.
            task = asyncio.get_running_loop().create_task(worker.run(), context=contextvars.Context())
            tasks.append(task)
            logger.info("Embedded workers consuming %s in the server process", ", ".join(channels))
        return await application(scope, receive, send)

    return app
