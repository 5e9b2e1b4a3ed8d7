"""Publishing job events to their users' websockets, on the layer built for broadcast.

Events travel on the ``events`` channel layer (Redis pub/sub in a
deployment: one PUBLISH per event, delivered to every daphne at once),
never on the list-based layer that carries ``job.run``.  They are a view of
the job rows, not the truth: one lost on the way (a Redis restart, a killed
worker) is made good by the snapshot a websocket gets when it (re)connects,
or when the events layer reconnects under it.

Fewer, better events.  A state the user would only see flash past is not
sent: while a job runs in this process, its running and progress updates
are held back ``JOBS_EVENT_HOLD`` seconds and after that sent at most every
``JOBS_EVENT_INTERVAL`` seconds, the newest one winning.  Everything else
goes out at once: a job queued, retrying (it leaves this process) or
final, which also drops whatever of the job was still held.  So a quick job
is "queued" then "ok", and a slow one adds "running, 40%" now and then.
Progress that its job already paces as news (a batch's every 5 %) is sent
as it comes (``job_progress(at_once=True)``).

Sends happen on the process's event loop, handed over from the job's
thread without waiting for them (no ``async_to_sync`` hop per event), in
the order they were published.  A process with no event loop (a management
command) sends each event at once, as it comes.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction

from jobs.concurrency import call_on, calling_loop, hand_over, settle_handed_over
from jobs.messages import send_group_event
from jobs.models import Job, JobStatus
from jobs.serializers import job_report
from project.names import JOB_UPDATE, user_group


# Jobs whose last send time this process remembers, for the interval.
MAX_REMEMBERED = 10_000

# A job's state that goes out at once; any other is held and coalesced.
AT_ONCE = frozenset({JobStatus.PENDING, JobStatus.RETRYING, JobStatus.OK, JobStatus.FAILED})


def job_event(job: Job, message: str) -> dict:
    """The group message for a job's current state."""
    return {"type": JOB_UPDATE, "job": job_report(job), "message": message}


def publish_job(*, job: Job, message: str, at_once: bool = False) -> None:
    """Publish the job's current state to its user once the current transaction commits.

    ``at_once`` sends even a running job's update without holding it back.
    """
    if job.user_id is None:
        return  # nobody's job (a task enqueued by cron for no one): its record is all there is
    event = job_event(job, message)
    hold = not at_once and job.status not in AT_ONCE
    transaction.on_commit(lambda: publish(user_group(job.user_id), event, job_id=job.pk, hold=hold))


def publish(group: str, event: dict, *, job_id: int | None = None, hold: bool = False) -> None:
    """Send ``event`` to ``group`` from this process's loop, or at once where there is none.

    ``hold`` marks a running job's update that may be held back and replaced
    by a newer one of the same job (``job_id``).  Never blocks on the layer.
    """
    loop = calling_loop()
    if loop is None:
        async_to_sync(send_group_event)(group, event)
        return
    call_on(loop, _publisher(loop).publish, group, event, job_id, hold)


async def flush() -> None:
    """Send everything this loop holds or has waiting (job messages too), now; for a process about to stop."""
    publisher = _publishers.get(asyncio.get_running_loop())
    if publisher is not None:
        publisher.release_all()
    await settle_handed_over()


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Publisher] = weakref.WeakKeyDictionary()


def _publisher(loop: asyncio.AbstractEventLoop) -> _Publisher:
    try:
        return _publishers[loop]
    except KeyError:
        publisher = _publishers[loop] = _Publisher(loop)
        return publisher


class _Publisher:
    """One loop's held events, by job; the rest go to the loop's queue of sends at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        # job id -> [group, event, timer]
        self.held: dict[int, list] = {}
        # job id -> loop time its last update went out
        self.sent_at: collections.OrderedDict[int, float] = collections.OrderedDict()

    def publish(self, group: str, event: dict, job_id: int | None, hold: bool) -> None:
        if job_id is None:
            self._enqueue(group, event)
            return
        if not hold:
            held = self.held.pop(job_id, None)
            if held is not None:
                held[2].cancel()
            self.sent_at.pop(job_id, None)
            self._enqueue(group, event)
            return
        if (held := self.held.get(job_id)) is not None:
            held[0], held[1] = group, event  # the newest state wins
            return
        now = self.loop.time()
        last = self.sent_at.get(job_id)
        due = now + settings.JOBS_EVENT_HOLD if last is None else max(now, last + settings.JOBS_EVENT_INTERVAL)
        self.held[job_id] = [group, event, self.loop.call_at(due, self._release, job_id)]

    def _release(self, job_id: int) -> None:
        held = self.held.pop(job_id, None)
        if held is None:
            return
        self.sent_at[job_id] = self.loop.time()
        self.sent_at.move_to_end(job_id)
        while len(self.sent_at) > MAX_REMEMBERED:
            self.sent_at.popitem(last=False)
        self._enqueue(held[0], held[1])

    @staticmethod
    def _enqueue(group: str, event: dict) -> None:
        # The loop's one queue of sends after commit (jobs.concurrency): in
        # order with each other and with the jobs' messages.
        hand_over(lambda: send_group_event(group, event))

    def release_all(self) -> None:
        for job_id in list(self.held):
            held = self.held.get(job_id)
            if held is not None:
                held[2].cancel()
                self._release(job_id)
