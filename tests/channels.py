"""Drive background consumers the way ``runworker`` does.

``ApplicationCommunicator`` would cancel a consumer while its worker thread
may still be committing and pushing events, and closing the test's event
loop then waits on that thread forever.  Here the consumer instance gets its
messages, then ``StopConsumer``, and returns only when every handler is done.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.exceptions import StopConsumer

from project.names import EVENTS_LAYER, JOB_RUN
from routing import channel_router


async def deliver(channel: str, *messages: dict, timeout: float = 30) -> None:
    """Run one consumer instance for ``channel`` over ``messages``, to completion."""
    queue = list(messages)

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        raise StopConsumer()

    async def send(message: dict) -> None:
        raise AssertionError(f"a background consumer sent {message!r}")

    async with asyncio.timeout(timeout):
        await channel_router({"type": "channel", "channel": channel}, receive, send)


async def drain(layer, channel: str, *, quiet: float = 0.3) -> list[dict]:
    """Every message waiting on ``channel``, until it has been quiet for ``quiet`` seconds."""
    events = []
    while True:
        try:
            async with asyncio.timeout(quiet):
                events.append(await layer.receive(channel))
        except TimeoutError:
            return events


def received(layer, channel: str, *, quiet: float = 0.05) -> list[dict]:
    """``drain`` for synchronous tests: the messages waiting on ``channel`` now."""
    return async_to_sync(drain)(layer, channel, quiet=quiet)


# For a test that sets its own default layer: job events still need theirs.
IN_MEMORY_EVENTS = {EVENTS_LAYER: {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def run_in_thread(consumer_class, job):
    """Run one ``job.run`` of ``job`` through a consumer's synchronous part, as the worker's thread does; the job after."""
    consumer = consumer_class()
    consumer.scope = {"type": "channel", "channel": job.channel}
    consumer.run({"type": JOB_RUN, "job": job.pk})
    job.refresh_from_db()
    return job
