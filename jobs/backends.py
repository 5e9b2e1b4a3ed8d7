"""``ChannelsBackend``: Django's Tasks API, run by our worker pools with durable job records.

``TASKS = {"default": {"BACKEND": "jobs.backends.ChannelsBackend", "QUEUES": [...]}}``.
Each queue is a background channel of its own, which routing.py gives to
``jobs.tasks.TaskConsumer``; ``runworker --only-channels`` picks queues as it
picks any channel.  ``enqueue`` writes a job row (the durable record every
job has, with its requeue guarantee) and sends its message after commit;
``get_result`` reads the row back.  Written against the ``django-tasks``
backport; on Django 6 the same code runs on ``django.tasks``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from jobs.models import Job, JobStatus
from jobs.selectors import task_job
from jobs.services import task_job_create
from jobs.tasks import Task, enqueuing

try:  # Django 6 ships the API as django.tasks.
    from django.tasks import TaskResult, TaskResultStatus
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued
except ImportError:
    from django_tasks import TaskResult, TaskResultStatus
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import TaskError
    from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued

from jobs.exceptions import TaskArgumentsNotJSON

STATUSES = {
    JobStatus.PENDING: TaskResultStatus.READY,
    JobStatus.RETRYING: TaskResultStatus.READY,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.OK: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
}


class ChannelsBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task: Task) -> None:
        if task.queue_name not in self.queues:
            raise InvalidTaskError(
                f"Queue {task.queue_name!r} is not a queue of task backend {self.alias!r}; "
                f"its queues are {', '.join(sorted(self.queues))} (TASKS[{self.alias!r}]['QUEUES'])."
            )
        super().validate_task(task)

    def enqueue(self, task: Task, args, kwargs) -> TaskResult:
        self.validate_task(task)
        payload = {"args": json_data(list(args), task), "kwargs": json_data(dict(kwargs), task)}
        who = enqueuing()
        job = task_job_create(
            backend=self.alias,
            path=task.module_path,
            queue=task.queue_name,
            payload=payload,
            priority=task.priority,
            run_after=task.run_after,
            owner=who.owner,
            subject=who.subject,
            announce=who.announce,
        )
        result = task_result_of(job, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        job = task_job(backend=self.alias, result_id=result_id)
        if job is None:
            raise TaskResultDoesNotExist(result_id)
        task = load_task(job.kind)
        if task is None:
            raise TaskResultDoesNotExist(f"{result_id}: its task {job.kind} no longer exists")
        return task_result_of(job, task)


def load_task(path: str) -> Task | None:
    """The task a job's kind names, or None if that path holds none (any more)."""
    try:
        task = import_string(path)
    except ImportError:
        return None
    return task if isinstance(task, Task) else None


def task_result_of(job: Job, task: Task) -> TaskResult:
    """The ``TaskResult`` a job row stands for."""
    if (task.priority, task.queue_name) != (job.priority, job.channel):
        # The task as it was enqueued (``task.using(...)``), not its function's defaults.
        task = task.using(priority=job.priority, queue_name=job.channel)
    result = TaskResult(
        task=task,
        id=str(job.pk),
        status=STATUSES[job.status],
        enqueued_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        last_attempted_at=job.last_attempt_at,
        args=job.payload.get("args", []),
        kwargs=job.payload.get("kwargs", {}),
        backend=job.backend,
        errors=[TaskError(**error) for error in job.errors],
        worker_ids=list(job.worker_ids),
    )
    object.__setattr__(result, "_return_value", job.result)
    return result


def json_data(value: Any, task: Task, where: str = "") -> Any:
    """``value`` checked to be JSON (as the Tasks API requires), or a ``TaskArgumentsNotJSON`` naming what is not."""
    if isinstance(value, models.Model):
        raise TaskArgumentsNotJSON(
            f"{task.name}: argument {where or 'value'} is a {type(value).__name__} instance; task arguments are "
            f"JSON only: pass its primary key ({value.pk!r}) and load it in the task"
        )
    if isinstance(value, Mapping):
        return {json_key(key, task, where): json_data(item, task, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        # json.dumps writes NaN and Infinity, which no database takes as JSON.
        raise TaskArgumentsNotJSON(f"{task.name}: argument {where or 'value'} is {value!r}, not a JSON number")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [json_data(item, task, f"{where}[{index}]") for index, item in enumerate(value)]
    raise TaskArgumentsNotJSON(
        f"{task.name}: argument {where or 'value'} is a {type(value).__name__}; task arguments are JSON only "
        "(str, int, float, bool, None, lists and dicts of them)"
    )


def json_key(key: Any, task: Task, where: str) -> str:
    if not isinstance(key, str):
        raise TaskArgumentsNotJSON(f"{task.name}: argument {where or 'value'} has a {type(key).__name__} key; JSON keys are strings")
    return key


def task_queues() -> list[str]:
    """The queues of every ``ChannelsBackend`` in ``TASKS``: the channels routing.py gives to the task consumer."""
    from django.conf import settings

    queues: list[str] = []
    for alias, params in getattr(settings, "TASKS", {}).items():
        try:
            backend = import_string(params["BACKEND"])
        except (ImportError, KeyError) as exc:
            raise ImproperlyConfigured(f"TASKS[{alias!r}] names no importable BACKEND: {exc}") from exc
        if isinstance(backend, type) and issubclass(backend, ChannelsBackend):
            queues.extend(queue for queue in params.get("QUEUES", ["default"]) if queue not in queues)
    return queues
