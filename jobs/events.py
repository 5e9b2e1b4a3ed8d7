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
import logging
import weakref

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction

from jobs.concurrency import calling_loop
from jobs.messages import send_group_event
from jobs.models import Job, JobStatus
from jobs.serializers import job_report
from project.names import JOB_UPDATE, user_group

logger = logging.getLogger(__name__)

# Events waiting to be sent by one process; past this the oldest are dropped
# (the layer is down or far behind), and the snapshot on reconnect covers them.
MAX_WAITING = 10_000
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
    publisher = _publisher(loop)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        publisher.publish(group, event, job_id, hold)
    else:
        loop.call_soon_threadsafe(publisher.publish, group, event, job_id, hold)


async def flush() -> None:
    """Send everything this loop holds or has waiting, now; for a process about to stop."""
    publisher = _publishers.get(asyncio.get_running_loop())
    if publisher is not None:
        await publisher.flush()


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Publisher] = weakref.WeakKeyDictionary()


def _publisher(loop: asyncio.AbstractEventLoop) -> _Publisher:
    try:
        return _publishers[loop]
    except KeyError:
        publisher = _publishers[loop] = _Publisher(loop)
        return publisher


class _Publisher:
    """One loop's events: held ones by job, and the ones waiting to be sent, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        # job id -> [group, event, timer]
        self.held: dict[int, list] = {}
        # job id -> loop time its last update went out
        self.sent_at: collections.OrderedDict[int, float] = collections.OrderedDict()
        self.waiting: collections.deque[tuple[str, dict]] = collections.deque()
        self.sender: asyncio.Task | None = None
        self.dropped = 0

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

    def _enqueue(self, group: str, event: dict) -> None:
        if len(self.waiting) >= MAX_WAITING:
            self.waiting.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("%d job event(s) dropped: the events layer is not keeping up", self.dropped)
        self.waiting.append((group, event))
        if self.sender is None or self.sender.done():
            self.sender = self.loop.create_task(self._send_waiting())

    async def _send_waiting(self) -> None:
        # One sender at a time keeps the order; it ends when nothing waits
        # (no await between the last check and the end, so nothing is missed).
        while self.waiting:
            group, event = self.waiting.popleft()
            try:
                await send_group_event(group, event)
            except Exception:
                logger.error("Could not push %s to group %s", event.get("type"), group, exc_info=True)

    async def flush(self) -> None:
        for job_id in list(self.held):
            held = self.held.get(job_id)
            if held is not None:
                held[2].cancel()
                self._release(job_id)
        if self.sender is not None:
            await asyncio.shield(self.sender)
