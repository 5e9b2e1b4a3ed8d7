"""Sending a job when it is due: the one path for retries and for ``run_after``.

A job's due time lives in its row (``next_attempt_at``): a retry's, written
with the retry, and a task's ``run_after``, written at enqueue.  This module
only derives a wake-up from that stored time: the process that wrote it
sends the job's message when the time comes, if it lives that long and has
a loop that lasts (a worker, daphne).  Otherwise nobody is lost: a row whose
due time has passed by more than ``JOBS_DUE_GRACE`` is sent by requeue
(``jobs.selectors.jobs_overdue``), and a message that arrives early finds the
job not yet claimable (``jobs.services.job_claim``) and is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from django.utils import timezone

from jobs.concurrency import call_on, calling_loop
from jobs.messages import send_job_messages

logger = logging.getLogger(__name__)

# Wake-ups further off than this are left to requeue: a timer held for a day
# in one process is a timer that a restart loses anyway.
HORIZON = 3600.0

# Kept so the timers are not collected.
_timers: set[asyncio.TimerHandle] = set()


def wake_at(channel: str, job_id: int, when: datetime | None, *, loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Send the job's message at ``when`` (now when None or past) from this process; False when it cannot.

    Call it after the commit that stored ``when``.  Without a serving loop
    here (a script, a command) nothing is scheduled and requeue sends the
    job once it is overdue.
    """
    loop = loop or calling_loop()
    if loop is None:
        return False
    delay = 0.0 if when is None else max(0.0, (when - timezone.now()).total_seconds())
    if delay > HORIZON:
        return False
    call_on(loop, _arm, loop, channel, job_id, delay)
    return True


def _arm(loop: asyncio.AbstractEventLoop, channel: str, job_id: int, delay: float) -> None:
    def fire() -> None:
        _timers.discard(handle)
        task = loop.create_task(send_job_messages([(channel, job_id)]))
        task.add_done_callback(_log_failure)

    handle = loop.call_later(delay, fire)
    _timers.add(handle)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("A due job's message could not be sent; requeue will send it", exc_info=task.exception())
