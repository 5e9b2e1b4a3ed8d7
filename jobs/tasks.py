"""Django's Tasks API on our workers: a task's options, its owner, and the consumer that runs it.

A ``@task`` needs nothing of ours to run here; these only add what the API
has no word for, and each is harmless under any other backend:

* ``@task_options(max_attempts=..., title=...)`` under ``@task``: retries
  with backoff, and what the page calls the task;
* ``with enqueue_as(user, subject=order):`` around ``enqueue``: whose
  websockets hear of it, when that is not the signed-in user of the request
  (a command, a consumer, cron), and what it is about.

The backend itself is ``jobs.backends.ChannelsBackend``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import socket
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from inspect import iscoroutinefunction
from typing import Any

import attrs
from django.conf import settings

from jobs.concurrency import run_blocking
from jobs.consumers import Handled, JobConsumer
from jobs.exceptions import TaskMissing, TaskResultNotJSON
from jobs.kinds import DEFAULT_MAX_ATTEMPTS, JobKind
from jobs.models import Job
from jobs.progress import running_task
from jobs.services import job_fail, job_schedule_retry, job_succeed, job_task_error, job_task_started, retry_delay

try:  # Django 6 ships the API as django.tasks; the backport is the same code.
    from django.tasks.base import Task, TaskContext
except ImportError:
    from django_tasks.base import Task, TaskContext


#: This process, as it appears in a task's ``worker_ids``.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


@attrs.frozen
class TaskOptions:
    """What ``task_options`` sets on a task function."""

    #: Attempts in all, or the name of the setting that holds them.
    max_attempts: int | str = DEFAULT_MAX_ATTEMPTS
    #: Backoff between attempts, in seconds: about ``base * 2**(attempt-1)``,
    #: capped at ``max_delay``, with jitter; the ``JOBS_RETRY_*`` settings by default.
    base_delay: float | None = None
    max_delay: float | None = None
    #: What the page calls a job of this task; None for its function's name
    #: in words, "" for no toast of its own (a line in its subject's toast).
    title: str | None = None

    def attempts(self) -> int:
        return getattr(settings, self.max_attempts) if isinstance(self.max_attempts, str) else self.max_attempts

    def delay(self, attempts: int) -> float:
        return retry_delay(attempts, base=self.base_delay, ceiling=self.max_delay)

    def title_of(self, task: Task) -> str:
        if self.title is not None:
            return self.title
        return task.name.replace("_", " ").capitalize()


DEFAULT_OPTIONS = TaskOptions()


def task_options(**options: Any):
    """Set a task function's ``TaskOptions``; put it under ``@task``, which must stay outermost."""
    chosen = TaskOptions(**options)

    def decorator(func):
        func.job_options = chosen
        return func

    return decorator


def options_of(task: Task) -> TaskOptions:
    return getattr(task.func, "job_options", DEFAULT_OPTIONS)


@attrs.frozen
class Enqueuing:
    """Who a task enqueued now belongs to, and what it is about."""

    owner: Any = None
    subject: Any = None
    #: Whether the user hears "queued" (no for follow-up work such as a receipt).
    announce: bool = True


_enqueuing: contextvars.ContextVar[Enqueuing | None] = contextvars.ContextVar("enqueuing", default=None)
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("task_request", default=None)


@contextlib.contextmanager
def enqueue_as(owner, *, subject=None, announce: bool = True) -> Iterator[None]:
    """Tasks enqueued inside report to ``owner`` (a user or a user id; None for nobody), about ``subject``."""
    token = _enqueuing.set(Enqueuing(owner=owner, subject=subject, announce=announce))
    try:
        yield
    finally:
        _enqueuing.reset(token)


def enqueuing() -> Enqueuing:
    """The owner and subject of a task enqueued now: ``enqueue_as``'s, else the signed-in user of the request."""
    chosen = _enqueuing.get()
    if chosen is not None:
        return chosen
    request = _request.get()
    user = getattr(request, "user", None)
    return Enqueuing(owner=user if user is not None and user.is_authenticated else None)


class TaskOwnerMiddleware:
    """Makes a request's signed-in user the owner of the tasks its view enqueues.

    The request, not its user, is kept: DRF authenticates a token in the
    view, after this runs, and sets the user on the request then.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


#: The kind a task's consumer stands for; each task's own kind is its path.
TASK = JobKind(name="task", channel="")


class TaskConsumer(JobConsumer):
    """Runs the tasks of Django's Tasks API that ``ChannelsBackend`` sent to a queue.

    A sync task runs in the worker's thread pool like any job; an async one
    on the worker's event loop, so one worker runs as many at once as its
    ``--concurrency``.  A ``TransientError`` (or a lost database connection)
    retries with the task's backoff; anything else fails the task.
    """

    kind = TASK
    task: Task | None = None

    def accepts(self, job: Job) -> bool:
        return job.is_task

    def writes_on_claim(self) -> bool:
        return True

    def on_claim(self, job: Job) -> None:
        from jobs.backends import load_task

        job_task_started(job=job, worker_id=WORKER_ID)
        self.task = load_task(job.kind)
        if self.task is None:
            raise TaskMissing(f"No task {job.kind} in this worker's code")

    def runs_on_loop(self, job: Job) -> bool:
        return iscoroutinefunction(self.task.func)

    async def run_on_loop(self, job: Job) -> Handled:
        with running_task(job) as run:
            try:
                work: Callable[[Job], Any] = _Returns(await self.task.func(*self._arguments(job), **self._keywords(job)))
            except Exception as exc:  # recorded on the job, as a sync task's would be
                work = _Raises(exc, exc.__traceback__)
        self.spoke = run.spoke
        return await run_blocking(self.settled, job, work)

    def handle(self, job: Job) -> Any:
        with running_task(job) as run:
            try:
                return self.task.func(*self._arguments(job), **self._keywords(job))
            finally:
                self.spoke = run.spoke

    def _arguments(self, job: Job) -> list:
        from jobs.backends import task_result_of

        args = list(job.payload.get("args", []))
        if self.task.takes_context:
            args.insert(0, TaskContext(task_result=task_result_of(job, self.task)))
        return args

    def _keywords(self, job: Job) -> dict:
        return dict(job.payload.get("kwargs", {}))

    def _options(self) -> TaskOptions:
        return options_of(self.task) if self.task is not None else DEFAULT_OPTIONS

    def max_attempts(self, exc: BaseException | None = None) -> int:
        return self._options().attempts()

    def retry_delay(self, job: Job, exc: BaseException) -> float:
        return self._options().delay(job.attempts)

    def on_success(self, job: Job, result: Any) -> None:
        try:
            value = json_value(result)
        except TypeError as exc:
            raise TaskResultNotJSON(f"{job.kind} returned {type(result).__name__}, which is not JSON") from exc
        job_succeed(job=job, message=self.success_message(job, result), result=value)

    def on_retry(self, job: Job, exc: BaseException, delay: float) -> None:
        error = self.describe(job, exc)
        job_schedule_retry(job=job, error=error, message=f"Temporary problem ({error}); trying again in {delay:.1f}s",
                           delay=delay, errors=job_task_error(job, exc, _traceback(exc)))

    def on_failure(self, job: Job, exc: BaseException) -> None:
        job_fail(job=job, error=self.describe(job, exc), message=self.failure_message(job, exc),
                 traceback=_traceback(exc), errors=job_task_error(job, exc, _traceback(exc)))

    def describe(self, job: Job, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"

    def success_message(self, job: Job, result: Any) -> str:
        # A task that told its owner how it went has the last word.
        return job.message if getattr(self, "spoke", False) else f"{self._title(job)}: done"

    def failure_message(self, job: Job, exc: BaseException) -> str:
        return f"{self._title(job)}: failed ({self.describe(job, exc)})"

    def _title(self, job: Job) -> str:
        return self._options().title_of(self.task) if self.task is not None else job.kind


def json_value(value: Any) -> Any:
    """A task's return value as the JSON it is stored as; ``TypeError`` if it is not JSON."""
    if isinstance(value, Mapping):
        return {_key(key): json_value(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        # json.dumps writes NaN and Infinity, which no database takes as JSON:
        # the save would fail as a database error, and retry the whole task.
        raise TypeError(repr(value))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [json_value(item) for item in value]
    raise TypeError(type(value).__name__)


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(type(key).__name__)
    return key


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


@attrs.frozen
class _Returns:
    value: Any

    def __call__(self, job: Job) -> Any:
        return self.value


@attrs.frozen
class _Raises:
    exc: BaseException
    tb: Any

    def __call__(self, job: Job) -> Any:
        raise self.exc.with_traceback(self.tb)
