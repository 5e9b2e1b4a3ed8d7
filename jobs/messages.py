"""The channel messages that wake workers up, and sending them safely.

A message carries only the job's id: the job row holds everything else, so a
lost, late or repeated message can never carry stale data.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import Iterable

import attrs
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError, TimeoutError as RedisTimeoutError

from jobs.exceptions import InvalidJobMessage
from project.names import EVENTS_LAYER, JOB_RUN

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


class SendFailure(enum.StrEnum):
    """Why a message was not sent: each cause asks the operator for something else."""

    FULL = "full"  # the layer answered: workers must drain the channel
    TIMEOUT = "timeout"  # no answer within JOBS_SEND_TIMEOUT: the layer is slow or stuck
    UNREACHABLE = "unreachable"  # a connection or Redis error: the layer is down


def send_failure(exc: BaseException) -> SendFailure:
    """The cause of one of ``SEND_ERRORS``."""
    if isinstance(exc, ChannelFull):
        return SendFailure.FULL
    # The builtin TimeoutError is an OSError, so it must be told apart first.
    if isinstance(exc, (TimeoutError, RedisTimeoutError)):
        return SendFailure.TIMEOUT
    return SendFailure.UNREACHABLE


@attrs.define
class SendResult:
    """What became of a batch of sends."""

    sent: list[int] = attrs.Factory(list)
    #: job id -> why its message was not sent
    failed: dict[int, SendFailure] = attrs.Factory(dict)
    #: channel -> its capacity, for each channel that answered ``ChannelFull``
    full: dict[str, int] = attrs.Factory(dict)


async def send_job_messages(items: Iterable[tuple[str, int]]) -> SendResult:
    """Send ``(channel, job_id)`` pairs; say which were sent and why the others were not.

    Each send is bounded by ``JOBS_SEND_TIMEOUT``; a failure is logged and
    leaves the job for the requeue command.  A channel that answers
    ``ChannelFull`` gets nothing more from this call: it stays full until
    workers drain it, and every further send would only be refused in turn
    (issue #19).  Its remaining items fail as full without a try; other
    channels still get theirs.
    """
    layer = get_channel_layer()
    result = SendResult()
    held_back: Counter[str] = Counter()
    for channel, job_id in items:
        if channel in result.full:
            result.failed[job_id] = SendFailure.FULL
            held_back[channel] += 1
            continue
        try:
            await asyncio.wait_for(layer.send(channel, job_message(job_id)), settings.JOBS_SEND_TIMEOUT)
        except SEND_ERRORS as exc:
            cause = send_failure(exc)
            result.failed[job_id] = cause
            if cause is SendFailure.FULL:
                result.full[channel] = layer.get_capacity(channel)
            logger.warning(
                "Could not send job %s to channel %r (%s); it stays pending for requeue",
                job_id,
                channel,
                exc.__class__.__name__,
                exc_info=cause is SendFailure.UNREACHABLE,
            )
        else:
            result.sent.append(job_id)
    for channel, count in held_back.items():
        logger.warning(
            "Channel %r is full (capacity %d): %d more job(s) not sent to it; they stay pending for requeue",
            channel,
            result.full[channel],
            count,
        )
    return result


async def send_group_event(group: str, event: dict) -> bool:
    """Push an event to a group on the events layer; the database stays the truth if it fails."""
    layer = get_channel_layer(EVENTS_LAYER)
    try:
        await asyncio.wait_for(layer.group_send(group, event), settings.JOBS_SEND_TIMEOUT)
    except SEND_ERRORS as exc:
        logger.warning("Could not push %s to group %s (%s)", event.get("type"), group, exc, exc_info=True)
        return False
    return True

