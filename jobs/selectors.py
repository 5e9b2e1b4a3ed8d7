"""Queries about jobs."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from jobs.models import UNFINISHED, Job


def jobs_for_user(
    *,
    user,
    status: str = "",
    kind: str = "",
    created_from: date | None = None,
    created_to: date | None = None,
) -> QuerySet[Job]:
    """The user's jobs, narrowed by status, kind and the day they were created (both days included)."""
    jobs = Job.objects.filter(user=user)
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    # Day lookups, not datetimes built here: the database takes the day in
    # the current time zone, and no date near year 1 or 9999 overflows.
    if created_from is not None:
        jobs = jobs.filter(created_at__date__gte=created_from)
    if created_to is not None:
        jobs = jobs.filter(created_at__date__lte=created_to)
    return jobs


def job_snapshot_for_user(*, user_id: int) -> list[Job]:
    """The user's unfinished jobs and the most recently finished ones."""
    unfinished = list(Job.objects.filter(user_id=user_id, status__in=UNFINISHED).order_by("-created_at")[:200])
    recent = list(
        Job.objects.filter(user_id=user_id)
        .exclude(status__in=UNFINISHED)
        .order_by("-updated_at")[: settings.JOBS_SNAPSHOT_RECENT]
    )
    return unfinished + recent


# A job due this long ago (a retry, a task's run_after) whose wake-up never
# came (its process ended first) is sent by requeue, however recently it was
# written: the process that wrote the due time would have sent it by now.
DUE_GRACE = timedelta(seconds=30)


def _due(now: datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def jobs_stuck(*, cutoff: datetime, now: datetime) -> QuerySet[Job]:
    """Unfinished jobs nobody has touched since ``cutoff``, and due.

    That covers a message that was lost or expired (``pending``), a retry or
    a ``run_after`` that is due and was not sent, and a job whose worker died
    (``running``).  A job not due yet is never among them.  The filter on
    status and ``updated_at`` is served by the index ``job_status_updated``,
    so the cost follows the unfinished rows only.
    """
    return Job.objects.filter(status__in=UNFINISHED, updated_at__lt=cutoff).filter(_due(now)).order_by("updated_at")


def jobs_overdue(*, now: datetime) -> QuerySet[Job]:
    """Unfinished jobs due ``DUE_GRACE`` ago or more, however recently written: nobody woke them.

    Served by the index ``job_status_due``.
    """
    return Job.objects.filter(status__in=UNFINISHED, next_attempt_at__lt=now - DUE_GRACE).order_by("next_attempt_at")


def jobs_to_requeue(*, cutoff: datetime, now: datetime) -> QuerySet[Job]:
    """``jobs_stuck`` and ``jobs_overdue`` together; to re-check rows already found, by primary key."""
    overdue = Q(next_attempt_at__lt=now - DUE_GRACE)
    return Job.objects.filter(Q(updated_at__lt=cutoff) | overdue, status__in=UNFINISHED).filter(_due(now))


_REQUEUE_FIELDS = ("id", "kind", "channel", "status", "updated_at", "next_attempt_at", "subject_type", "subject_id")


def iter_stuck_jobs(*, cutoff: datetime, now: datetime, chunk_size: int = 500) -> Iterator[Job]:
    """Stream stuck jobs, then overdue ones, each once, with constant memory.

    With every field requeue writes when it takes a job, so that it can hand
    the job back as it was when the send fails.
    """
    yield from jobs_stuck(cutoff=cutoff, now=now).only(*_REQUEUE_FIELDS).iterator(chunk_size=chunk_size)
    # Those already streamed were written before the cutoff: not again.
    overdue = jobs_overdue(now=now).filter(updated_at__gte=cutoff)
    yield from overdue.only(*_REQUEUE_FIELDS).iterator(chunk_size=chunk_size)


# However many unfinished jobs a user has, the snapshot names at most this
# many more of the kinds it must restore in full.
SNAPSHOT_WHOLE_MAX = 1000


def job_snapshot_for_user_with(*, user_id: int, whole_kinds: Collection[str]) -> list[Job]:
    """``job_snapshot_for_user``, and every unfinished job of ``whole_kinds`` that it left out.

    Its 200 newest unfinished jobs can all be one large batch's lookups: the
    batch's own job, created before them, falls outside, and a page reloaded
    mid-batch would lose the batch.  Jobs a page shows one by one (a
    payment, a batch) are listed whatever else is running.
    """
    jobs = job_snapshot_for_user(user_id=user_id)
    listed = {job.pk for job in jobs}
    missing = (
        Job.objects.filter(user_id=user_id, status__in=UNFINISHED, kind__in=list(whole_kinds))
        .exclude(pk__in=listed)
        .order_by("-created_at")[:SNAPSHOT_WHOLE_MAX]
    )
    return jobs + list(missing)


def task_job(*, backend: str, result_id: str) -> Job | None:
    """The job row of a task result id of ``backend``, or None."""
    if not result_id.isascii() or not result_id.isdigit() or len(result_id) > 18:
        return None
    return Job.objects.filter(pk=int(result_id), backend=backend).first()
