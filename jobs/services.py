"""Writes to job records, and the events that follow them.

Every event is pushed from ``transaction.on_commit``: nobody hears about a
state the database might still roll back, and a worker never receives a
message about a row it cannot see yet.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from functools import partial

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import Q
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from jobs.concurrency import hand_over
from jobs.events import publish, publish_job
from jobs.kinds import JobKind
from jobs.messages import send_job_messages
from jobs.models import Job, JobStatus
from jobs.payloads import dump
from jobs.refs import ModelRef, model_of
from jobs.scheduler import wake_at


# Generous enough for any sentence we write, short enough for a toast.
MESSAGE_MAX = 300


def job_create(
    *,
    kind: JobKind,
    user,
    subject: models.Model,
    payload: object = None,
    message: str = "",
    announce: bool = True,
) -> Job:
    """Send work to its kind's channel: create its job record and send the message after commit.

    The one way work of a declared kind is sent, from views, commands and
    consumers alike (a task of Django's Tasks API is sent by its backend).
    ``subject`` is the row the job works on (its model must be in
    ``JOBS_ALLOWED_MODELS``); ``payload`` is plain data or an attrs instance.
    Call it inside the transaction that creates the subject, so the two
    exist together or not at all.  ``announce=False`` skips the "queued"
    event, for follow-up work whose queueing tells the user nothing (a
    receipt after its payment's "paid"); its later events still go out.
    Returns the job.
    """
    ref = ModelRef.of(subject)
    model_of(ref.label)  # refuse here what no worker would accept
    job = Job.objects.create(
        kind=kind.name,
        channel=kind.channel,
        user_id=getattr(user, "pk", user),
        subject_type=ref.label,
        subject_id=ref.pk,
        payload=dump(payload) if payload is not None else {},
        message=message[:MESSAGE_MAX],
    )
    # Commit hooks run in order: the "queued" event goes out before the
    # message that may make a worker report "running".
    if announce:
        job_notify(job=job, message=message)
    job_enqueue(job=job)
    return job


def job_enqueue(*, job: Job) -> None:
    """Send the job's message once the current transaction commits."""
    transaction.on_commit(partial(job_send, channel=job.channel, job_id=job.pk))


def job_send(*, channel: str, job_id: int) -> None:
    """Send one job message; call it from ``transaction.on_commit``.

    Handed to the process's event loop where there is one (a worker, or
    daphne serving a request): the thread goes on without waiting for Redis.
    A send that fails is logged, and the job, committed, waits for requeue.
    """
    if not hand_over(lambda: send_job_messages([(channel, job_id)])):
        async_to_sync(send_job_messages)([(channel, job_id)])


# The statuses a worker takes a job from.
CLAIMABLE = (JobStatus.PENDING, JobStatus.RETRYING)


def _running(now) -> dict:
    """What a claim writes: the job is running, one attempt more."""
    return {
        "status": JobStatus.RUNNING,
        "attempts": models.F("attempts") + 1,
        "last_attempt_at": now,
        "next_attempt_at": None,
        "message": "Started",
        "updated_at": now,
    }


def job_claim(*, job_id: int) -> Job | None:
    """Take the job for this worker, or None when it is not ours to run.

    Of two deliveries of the same message only one moves the job from
    pending/retrying to running; the other gets None, as does a message that
    comes before the job is due (its retry or ``run_after``).  On PostgreSQL a
    worker never waits on another worker (or a requeue run) that holds the
    row: it just moves on.  One statement (see ``_claim``), so it needs no
    transaction of its own; in a caller's transaction it is one write more.
    """
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now() + COME_DUE_TOGETHER)
    claimed = _claim(Job.objects.filter(due, pk=job_id, status__in=CLAIMABLE).order_by().values("pk"))
    return claimed[0] if claimed else None


# Jobs that failed in one call get their retry times a few milliseconds
# apart, one after the other: within this much they count as due together.
COME_DUE_TOGETHER = timedelta(seconds=1)


def job_claim_many(*, among: models.QuerySet, kind: str, limit: int) -> list[Job]:
    """Take up to ``limit`` waiting jobs of one kind, of the ids ``among`` selects; the ones this worker got.

    Pending jobs, and retries that are due: jobs that failed together (a 429
    for a whole call) come back together, not one call each.  A retry whose
    time has not come is left to it.  The same guards as ``job_claim``: on
    PostgreSQL rows another worker holds are skipped and the next free ones
    taken (so workers claiming at once get separate sets, not the same one),
    and the conditional UPDATE decides on every database.
    """
    now = timezone.now()
    waiting = Q(status=JobStatus.PENDING) | Q(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + COME_DUE_TOGETHER), status=JobStatus.RETRYING
    )
    pick = Job.objects.filter(waiting, pk__in=among, kind=kind).order_by("pk").values("pk")[:limit]
    # In the model's order, newest first, as any list of jobs.
    return sorted(_claim(pick), key=lambda job: (job.created_at, job.pk), reverse=True)


def _claim(pick: models.QuerySet) -> list[Job]:
    """Make the jobs ``pick`` (a ``values("pk")`` query) selects running, in one UPDATE … RETURNING; the ones it moved.

    No SELECT before or after, and no transaction: the rows come back from
    the write itself.  On PostgreSQL the picked rows are locked FOR UPDATE
    SKIP LOCKED inside the same statement, so a row another transaction
    holds (another claim, a requeue run) is left, never waited on.  The
    UPDATE's own condition on the status is the guard on every database: of
    two claimers only one moves a row from pending or retrying.  (SQLite
    takes its write lock as the statement starts, so there the pick and the
    write see the same rows.)  Each job's event goes out after commit.
    """
    connection = connections[pick.db]
    quote = connection.ops.quote_name
    picked, picked_params = pick.query.get_compiler(pick.db).as_sql()
    if connection.vendor == "postgresql":
        # ANY(ARRAY(...)): the pick runs once, before the update, which then
        # finds its rows by primary key.  (With IN, a table without fresh
        # statistics may be planned as a scan of every pending job.)  The
        # lock is written here, not with select_for_update(): Django refuses
        # that outside a transaction, and this statement needs none.
        which = f"{quote(Job._meta.pk.column)} = ANY(ARRAY({picked} FOR UPDATE SKIP LOCKED))"
    else:
        which = f"{quote(Job._meta.pk.column)} IN ({picked})"
    writes = Job.objects.all().query.chain(UpdateQuery)
    writes.add_update_values(_running(timezone.now()))
    update, update_params = writes.get_compiler(pick.db).as_sql()
    columns = ", ".join(quote(field.column) for field in Job._meta.concrete_fields)
    claims = Job.objects.db_manager(pick.db).raw(
        f"{update} WHERE {which} AND {quote(Job._meta.get_field('status').column)} IN (%s, %s) RETURNING {columns}",
        (*update_params, *picked_params, *CLAIMABLE),
    )
    jobs = list(claims)
    for job in jobs:
        job_notify(job=job, message=job.message)
    return jobs


def _save(job: Job, message: str | None, *, at_once: bool = False, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    if message is not None:
        job.message = message[:MESSAGE_MAX]
    job.save(update_fields=[*fields, "message", "updated_at"])
    job_notify(job=job, message=job.message, at_once=at_once)


def job_progress(*, job: Job, progress: int, message: str, at_once: bool = False) -> None:
    """Record progress (0-100) and tell the user; also shows the job is alive.

    A running job's updates are held back and coalesced (``jobs.events``);
    ``at_once`` sends this one as it comes, for progress the caller already
    paces as news (a batch's every 5 %).
    """
    _save(job, message, at_once=at_once, progress=max(0, min(100, int(progress))))


def job_step_done(*, job: Job, step: int, of: int, result: object, message: str) -> None:
    """Record that a chain's step finished, with what it returned for the next one."""
    _save(job, message, step=step, step_result=dump(result), progress=max(job.progress, 100 * step // (of + 1)))


def job_succeed(*, job: Job, message: str, **more) -> None:
    _save(
        job,
        message,
        status=JobStatus.OK,
        progress=100,
        error="",
        traceback="",
        finished_at=timezone.now(),
        **more,
    )


def job_fail(*, job: Job, error: str, message: str, traceback: str = "", **more) -> None:
    _save(
        job,
        message,
        status=JobStatus.FAILED,
        error=error,
        traceback=traceback,
        finished_at=timezone.now(),
        next_attempt_at=None,
        **more,
    )


def retry_delay(attempts: int, *, base: float | None = None, ceiling: float | None = None) -> float:
    """Exponential backoff with jitter: about base * 2**(attempts-1), capped at ``ceiling``.

    ``JOBS_RETRY_BASE_DELAY`` and ``JOBS_RETRY_MAX_DELAY`` unless given.
    Half the delay is fixed and half random ("equal jitter"), so retries of
    many jobs that failed together spread out but never come back at once.
    """
    base = settings.JOBS_RETRY_BASE_DELAY if base is None else base
    ceiling = settings.JOBS_RETRY_MAX_DELAY if ceiling is None else ceiling
    delay = min(ceiling, base * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def job_schedule_retry(*, job: Job, error: str, message: str, delay: float, **more) -> None:
    """Mark the job ``retrying`` with its next attempt time, durably.

    The time is in the row, so a retry survives the worker dying: the
    requeue command sends any retry that is due and was not sent.
    """
    _save(
        job,
        message,
        status=JobStatus.RETRYING,
        error=error,
        # As given: a third party that only asked us to wait (a 429) costs no attempt.
        attempts=job.attempts,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        **more,
    )


def job_notify(*, job: Job, message: str, at_once: bool = False) -> None:
    """Push the job's current state to its user's websockets after commit (``jobs.events``)."""
    publish_job(job=job, message=message, at_once=at_once)


def push_group_event(group: str, event: dict) -> None:
    """Send one event to a group; call it from ``transaction.on_commit``."""
    publish(group, event)


# --- tasks of Django's Tasks API (jobs.backends) ---------------------------------


def task_job_create(
    *,
    backend: str,
    path: str,
    queue: str,
    payload: dict,
    priority: int = 0,
    run_after: datetime | None = None,
    owner=None,
    subject: models.Model | None = None,
    announce: bool = True,
) -> Job:
    """The job record of an enqueued task; its message goes to ``queue`` after commit, or when due.

    ``owner`` (a user, a user id or None) is whose websockets hear of it;
    ``subject`` the row it is about, if any (an allowed model, as for any job).
    """
    ref = ModelRef.of(subject) if subject is not None else None
    if ref is not None:
        model_of(ref.label)
    job = Job.objects.create(
        kind=path,
        channel=queue,
        backend=backend,
        user_id=getattr(owner, "pk", owner),
        subject_type=ref.label if ref else "",
        subject_id=ref.pk if ref else "",
        payload=payload,
        priority=priority,
        next_attempt_at=run_after,
        message="Queued" if run_after is None else "Scheduled",
    )
    if announce:
        job_notify(job=job, message=job.message)
    if run_after is None:
        job_enqueue(job=job)
    else:
        transaction.on_commit(partial(_send_when_due, queue, job.pk, run_after))
    return job


def _send_when_due(channel: str, job_id: int, when: datetime) -> None:
    # Woken by this process when it can; a time already past needs no wake-up
    # (a command, cron, a script), so it is sent now rather than left to requeue.
    if not wake_at(channel, job_id, when) and when <= timezone.now():
        job_send(channel=channel, job_id=job_id)


def job_task_started(*, job: Job, worker_id: str) -> None:
    """Record which worker took this attempt of a task (``TaskResult.worker_ids``), and when the first began."""
    job.worker_ids = [*job.worker_ids, worker_id]
    job.started_at = job.started_at or job.last_attempt_at
    Job.objects.filter(pk=job.pk).update(worker_ids=job.worker_ids, started_at=job.started_at)


def job_task_error(job: Job, exc: BaseException, traceback: str) -> list[dict]:
    """The task's errors with this one added, as ``TaskResult.errors`` reads them."""
    path = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return [*job.errors, {"exception_class_path": path, "traceback": traceback}]


def job_metadata(*, job: Job, values: dict) -> None:
    """Merge ``values`` into the job's metadata and tell the user."""
    _save(job, None, metadata={**job.metadata, **values})
