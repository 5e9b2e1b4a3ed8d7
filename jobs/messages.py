"""The channel messages that wake workers up, and sending them safely.

A message carries only the job's id: the job row holds everything else, so a
lost, late or repeated message can never carry stale data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextvars import ContextVar

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from jobs.exceptions import InvalidJobMessage
from project.names import JOB_RUN

logger = logging.getLogger(__name__)

# What a failing send looks like, whatever the layer: the job row stays
# behind and the requeue command sends it again later.
SEND_ERRORS = (ChannelFull, asyncio.TimeoutError, OSError, RedisError)


def job_message(job_id: int) -> dict:
    return {"type": JOB_RUN, "job": job_id}


def parse_job_message(message: object) -> int:
    """The job id a ``job.run`` message names, or ``InvalidJobMessage``."""
    job_id = message.get("job") if isinstance(message, dict) else None
    # Bounded to a 64-bit key: a bigger number would overflow the database driver.
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id < 2**63:
        raise InvalidJobMessage(f"message names no job: {message!r:.200}")
    return job_id


async def send_job_messages(items: Iterable[tuple[str, int]]) -> list[int]:
    """Send ``(channel, job_id)`` pairs; return the ids that were sent.

    Each send is bounded by ``JOBS_SEND_TIMEOUT``; a failure is logged and
    leaves the job for the requeue command.
    """
    layer = get_channel_layer()
    sent = []
    for channel, job_id in items:
        try:
            await asyncio.wait_for(layer.send(channel, job_message(job_id)), settings.JOBS_SEND_TIMEOUT)
        except SEND_ERRORS as exc:
            logger.warning(
                "Could not send job %s to channel %r (%s); it stays pending for requeue",
                job_id,
                channel,
                exc.__class__.__name__,
                exc_info=not isinstance(exc, (ChannelFull, asyncio.TimeoutError)),
            )
        else:
            sent.append(job_id)
    return sent


async def send_group_event(group: str, event: dict) -> bool:
    """Push an event to a group; the database stays the truth if it fails."""
    layer = get_channel_layer()
    try:
        await asyncio.wait_for(layer.group_send(group, event), settings.JOBS_SEND_TIMEOUT)
    except SEND_ERRORS as exc:
        logger.warning("Could not push %s to group %s (%s)", event.get("type"), group, exc, exc_info=True)
        return False
    return True


class Outbox:
    """Sends a worker's events and job messages in order, without making job threads wait.

    A job thread that waited for each push would hold its slot through a
    round trip to the event loop and Redis for every state change.  Instead
    it drops the item here and goes on; one task on the loop sends the items
    in the order they came, so a user never sees "paid" before "running".
    What is still queued when the process dies is lost like any other
    at-most-once event: the job rows stay the truth and requeue re-sends
    unfinished jobs.
    """

    def __init__(self, *, maxsize: int = 10_000) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, str, object]] = asyncio.Queue(maxsize)
        self._task = self._loop.create_task(self._run())
        self.dropped = 0

    def put_event(self, group: str, event: dict) -> None:
        """Queue a group event; safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._put, ("event", group, event))

    def put_job(self, channel: str, job_id: int) -> None:
        """Queue a ``job.run`` message; safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._put, ("job", channel, job_id))

    def _put(self, item: tuple[str, str, object]) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # Redis is far behind; the rows keep the state and requeue covers jobs.
            self.dropped += 1
            logger.warning("Outbox full; dropped a %s for %s", item[0], item[1])

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # In order per group or channel, and the groups side by side: one
            # slow user's socket or shard never holds up everybody's events.
            by_target: dict[tuple[str, str], list[object]] = {}
            for kind, target, payload in batch:
                by_target.setdefault((kind, target), []).append(payload)
            await asyncio.gather(*(self._send(kind, target, payloads)
                                   for (kind, target), payloads in by_target.items()))
            for _ in batch:
                self._queue.task_done()

    async def _send(self, kind: str, target: str, payloads: list[object]) -> None:
        try:
            if kind == "job":
                await send_job_messages([(target, job_id) for job_id in payloads])
            else:
                for event in payloads:
                    await send_group_event(target, event)
        except Exception:
            logger.error("Outbox could not send %d %s(s) to %s", len(payloads), kind, target, exc_info=True)

    async def close(self, timeout: float) -> int:
        """Send what is queued, for up to ``timeout`` seconds; return how many were left."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            logger.warning("%d event(s) and message(s) were not sent before shutdown", self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self._queue.qsize()


#: The running worker's outbox; job threads inherit it with their context.
outbox: ContextVar[Outbox | None] = ContextVar("outbox", default=None)
