"""Progress, metadata and resumable steps from inside a task of Django's Tasks API.

A task that takes the context calls these with it::

    @task(takes_context=True)
    def import_catalogue(context, url):
        rows = resumable(context, "download", lambda: download(url))
        for done, row in enumerate(rows, 1):
            ...
            report_progress(context, 100 * done // len(rows), f"{done} of {len(rows)} rows")

On our workers each goes into the job record and to the owner's
websockets; under any other backend (Django's Immediate one, in a test or a
plain set-up) they do nothing and ``resumable`` just runs its function, so
the task runs there unchanged.  Progress is paced like a book batch's: a
row write when it crosses a step of ``PROGRESS_STEP`` percent or
``PROGRESS_INTERVAL`` after the last one, and always at 100; its events are
held back and coalesced like any running job's (``jobs.events``).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs

from jobs.concurrency import run_blocking
from jobs.models import Job
from jobs.payloads import dump, load
from jobs.services import job_metadata, job_progress

T = TypeVar("T")

PROGRESS_STEP = 5  # percent
PROGRESS_INTERVAL = 0.5  # seconds


@attrs.define
class TaskRun:
    """The job of the task running in this context, and when its progress was last written."""

    job: Job
    written_percent: int = -PROGRESS_STEP
    written_at: float = 0.0
    #: Whether the task said something of its own (its last message stands at the end).
    spoke: bool = False


_running: contextvars.ContextVar[TaskRun | None] = contextvars.ContextVar("running_task", default=None)


@contextlib.contextmanager
def running_task(job: Job) -> Iterator[TaskRun]:
    """Mark ``job`` as the task running in this context (the task's consumer does)."""
    run = TaskRun(job=job)
    token = _running.set(run)
    try:
        yield run
    finally:
        _running.reset(token)


def _run_of(context) -> TaskRun | None:
    run = _running.get()
    if run is None or str(run.job.pk) != str(context.task_result.id):
        return None  # another backend's task, or none of ours
    return run


def report_progress(context, percent: int, message: str = "") -> None:
    """Record how far the task is (0-100) with a sentence for its owner."""
    run = _run_of(context)
    if run is None:
        return
    percent = max(0, min(100, int(percent)))
    now = time.monotonic()
    news = message and message != run.job.message
    if percent < 100 and percent < run.written_percent + PROGRESS_STEP and now - run.written_at < PROGRESS_INTERVAL \
            and not (news and now - run.written_at >= PROGRESS_INTERVAL):
        return
    run.written_percent, run.written_at, run.spoke = percent, now, run.spoke or bool(message)
    # Held back and coalesced like any running job's update (jobs.events): a
    # task that ends soon after is only its final state on the page.
    job_progress(job=run.job, progress=percent, message=message or run.job.message)


async def areport_progress(context, percent: int, message: str = "") -> None:
    """``report_progress`` for an async task."""
    if _run_of(context) is not None:
        await run_blocking(report_progress, context, percent, message)


def set_metadata(context, **values: Any) -> None:
    """Merge plain-data ``values`` into the task's metadata; its owner's page gets them."""
    run = _run_of(context)
    if run is not None:
        job_metadata(job=run.job, values=dump(values))


async def aset_metadata(context, **values: Any) -> None:
    """``set_metadata`` for an async task."""
    if _run_of(context) is not None:
        await run_blocking(set_metadata, context, **values)


STEPS = "steps"


def resumable(context, name: str, func: Callable[[], T], *, returns: type | None = None) -> T:
    """``func()``'s result, run once per task: an attempt after a failure gets the stored one back.

    The result is stored in the task's metadata under ``steps`` (plain data,
    or attrs rebuilt as ``returns``), so a retry starts at the step that
    failed.  Keep a step to one side effect: one that fails midway runs again.
    """
    run = _run_of(context)
    if run is None:
        return func()
    steps = run.job.metadata.get(STEPS, {})
    if name in steps:
        return load(steps[name], returns) if returns is not None else steps[name]
    result = func()
    job_metadata(job=run.job, values={STEPS: {**steps, name: dump(result)}})
    return result
