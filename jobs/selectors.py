"""Queries about jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from jobs.models import UNFINISHED, Job, JobStatus


def jobs_for_user(*, user) -> QuerySet[Job]:
    return Job.objects.filter(user=user)


def job_snapshot_for_user(*, user_id: int) -> list[Job]:
    """The user's unfinished jobs and the most recently finished ones."""
    unfinished = list(Job.objects.filter(user_id=user_id, status__in=UNFINISHED).order_by("-created_at")[:200])
    recent = list(
        Job.objects.filter(user_id=user_id)
        .exclude(status__in=UNFINISHED)
        .order_by("-updated_at")[: settings.JOBS_SNAPSHOT_RECENT]
    )
    return unfinished + recent


def jobs_stuck(*, cutoff: datetime, now: datetime) -> QuerySet[Job]:
    """Unfinished jobs nobody has touched since ``cutoff``.

    That covers a message that was lost or expired (``pending``), a retry that
    is due (``retrying``) and a job whose worker died (``running``).  The
    filter on status and ``updated_at`` is served by the index
    ``job_status_updated``, so the cost follows the unfinished rows only.
    """
    return (
        Job.objects.filter(status__in=UNFINISHED, updated_at__lt=cutoff)
        .filter(~Q(status=JobStatus.RETRYING) | Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("updated_at")
    )


def iter_stuck_jobs(*, cutoff: datetime, now: datetime, chunk_size: int = 500) -> Iterator[Job]:
    """Stream stuck jobs with constant memory."""
    return jobs_stuck(cutoff=cutoff, now=now).only(
        "id", "kind", "channel", "status", "updated_at", "subject_type", "subject_id"
    ).iterator(chunk_size=chunk_size)
