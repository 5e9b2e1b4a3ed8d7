"""The channel messages that wake workers up, and sending them safely.

A message carries only the job's id: the job row holds everything else, so a
lost, late or repeated message can never carry stale data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

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

