"""Task functions of Django's Tasks API for the tests, as a developer would write them.

Module-level, so that a worker process started from the repository root
imports them by their path (``tests.tasks.count_in_steps``), as it would a
product's ``orders.tasks.send_receipt``.  They use only the standard API and
``jobs.progress`` / ``jobs.tasks.task_options``, which do nothing under any
other backend: the same functions run on Django's Immediate backend.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
from pathlib import Path

from integrations.exceptions import TransientError
from jobs.progress import areport_progress, report_progress, set_metadata
from jobs.tasks import task_options

try:  # Django 6 ships the API as django.tasks.
    from django.tasks import task
except ImportError:
    from django_tasks import task


class BrokenOnPurpose(ValueError):
    """Raised by ``broken``: a plain error, which no retry can help."""


@task(takes_context=True)
def count_in_steps(context, steps: int, label: str = "") -> dict:
    """Report progress after each of ``steps`` steps, then return what was counted and on which attempt."""
    set_metadata(context, label=label, steps=steps)
    for done in range(1, steps + 1):
        report_progress(context, 100 * done // steps, f"Step {done} of {steps}")
    return {"counted": steps, "label": label, "attempt": context.attempt}


@task
def add(a: int, b: int) -> int:
    """The smallest task there is: no context, a plain return value."""
    return a + b


@task(takes_context=True)
@task_options(max_attempts=4, base_delay=0, max_delay=0)
def flaky(context, failures: int) -> int:
    """Raise ``TransientError`` on the first ``failures`` attempts, then return the attempt that succeeded."""
    if context.attempt <= failures:
        raise TransientError(f"not yet (attempt {context.attempt})")
    return context.attempt


@task(takes_context=True)
@task_options(max_attempts=3, base_delay=0.05, max_delay=0.1)
def flaky_briefly(context, failures: int) -> int:
    """``flaky`` with a short real backoff: its retries are woken by the worker's timers."""
    if context.attempt <= failures:
        raise TransientError(f"not yet (attempt {context.attempt})")
    return context.attempt


@task(takes_context=True)
@task_options(max_attempts=3, base_delay=60, max_delay=60)
def flaky_slowly(context) -> int:
    """Fails its first attempt with a backoff of a minute: the retry's due time is in the row."""
    if context.attempt == 1:
        raise TransientError("come back in a minute")
    return context.attempt


@task(takes_context=True)
@task_options(max_attempts=2, base_delay=0, max_delay=0)
def always_transient(context) -> None:
    """Never gets through: fails for good once its attempts are spent."""
    raise TransientError(f"still down (attempt {context.attempt})")


@task
@task_options(max_attempts=5)
def broken(reason: str) -> None:
    """Raise a plain error: fails at once, whatever its retry policy."""
    raise BrokenOnPurpose(reason)


NOT_JSON = {"set": {1, 2, 3}, "nan": float("nan"), "infinity": [float("inf")], "bytes": b"raw"}


@task
def returns_no_json(what: str) -> object:
    """Return what JSON cannot hold: a value of ``NOT_JSON``."""
    return NOT_JSON[what]


@task(queue_name="emails", priority=3)
def on_emails(text: str) -> str:
    return text.upper()


# --- concurrency, proved by structure --------------------------------------------

# By the key a test chose: tasks started so far, and tasks running now.
_started: collections.Counter[str] = collections.Counter()
_present: collections.Counter[str] = collections.Counter()
#: Whether each run was on an event loop's own thread (not a worker thread).
_on_loop_thread: dict[str, list[bool]] = collections.defaultdict(list)

PEERS_TIMEOUT = 30.0


@task(takes_context=True)
async def gather(context, key: str, peers: int) -> int:
    """Wait until ``peers`` tasks of ``key`` have started; how many had when it stopped waiting.

    Each run stays running until it has seen them all start: run one after
    another, the first would never see its peers.  So when every run returns
    ``peers``, the first to finish saw all of them start before it ended: all
    were running at once.  A bound ends the wait, so a failure is a smaller
    number, not a hang.
    """
    _started[key] += 1
    _present[key] += 1
    _on_loop_thread[key].append(threading.current_thread() is threading.main_thread())
    try:
        await areport_progress(context, 50, f"Waiting for {peers} peers")
        deadline = time.monotonic() + PEERS_TIMEOUT
        while _started[key] < peers and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return _started[key]
    finally:
        _present[key] -= 1


def present(key: str) -> int:
    return _present[key]


def on_loop_thread(key: str) -> list[bool]:
    return list(_on_loop_thread[key])


# --- a task that lives across processes ---------------------------------------------


@task(takes_context=True)
@task_options(max_attempts=5)
def slow_until_released(context, directory: str) -> str:
    """Report progress, then wait for ``<directory>/release`` before finishing; logs each start and finish.

    A file, not the database: a worker killed mid-task leaves its line in
    ``runs.log``, and the test counts the finishes of every process that ran it.
    """
    where = Path(directory)
    with (where / "runs.log").open("a") as log:
        log.write(f"start {os.getpid()} attempt {context.attempt}\n")
    set_metadata(context, waited_on=str(where / "release"))
    report_progress(context, 10, "Started, waiting for the release")
    deadline = time.monotonic() + 120
    while not (where / "release").exists():
        if time.monotonic() > deadline:
            raise TransientError("never released")
        time.sleep(0.05)
    report_progress(context, 100, "Released and done")
    with (where / "runs.log").open("a") as log:
        log.write(f"done {os.getpid()} attempt {context.attempt}\n")
    return f"done on attempt {context.attempt}"
