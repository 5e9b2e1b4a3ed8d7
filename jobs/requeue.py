"""Send again whatever never finished: the database is the source of truth.

Channels delivers at most once: a message can expire, be refused with
``ChannelFull``, or die with its worker.  The job row survives all of that,
and this service finds unfinished rows nobody has touched for a while and
sends them to their channel again.

Safe beside live workers and beside another copy of itself: a job is taken
with a conditional UPDATE on the ``updated_at`` it was read with, so of two
copies only one sends it, and a worker that touched it in between wins.
Even a message sent twice is harmless, because workers claim jobs atomically.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import attrs
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from jobs.locks import exclusive
from jobs.messages import send_job_messages
from jobs.models import Job, JobStatus
from jobs.selectors import iter_stuck_jobs, jobs_stuck

logger = logging.getLogger(__name__)

BATCH = 200

STATUS_REASONS = {
    JobStatus.PENDING: "never started (message lost, expired or refused)",
    JobStatus.RETRYING: "retry due",
    JobStatus.RUNNING: "left running by a dead worker",
}

#: kind -> function(jobs) -> {job_id: reason}, for reasons finer than the status.
_reason_providers: dict[str, Callable[[list[Job]], dict[int, str]]] = {}


def register_reasons(kind: str):
    """Register a function that explains, in one query, why jobs of ``kind`` are stuck."""

    def decorator(func):
        _reason_providers[kind] = func
        return func

    return decorator


@attrs.define
class RequeueReport:
    #: False when another copy held the run lock and this one did nothing.
    ran: bool = True
    found: int = 0
    requeued: int = 0
    found_by_reason: Counter = attrs.Factory(Counter)
    skipped: Counter = attrs.Factory(Counter)
    listed: list[tuple[int, str, str]] = attrs.Factory(list)

    @property
    def send_failures(self) -> int:
        return self.skipped["send failed (channel layer unreachable or full)"]


def _reasons(jobs: list[Job]) -> dict[int, str]:
    reasons = {job.pk: STATUS_REASONS[job.status] for job in jobs}
    by_kind: dict[str, list[Job]] = {}
    for job in jobs:
        by_kind.setdefault(job.kind, []).append(job)
    for kind, group in by_kind.items():
        if kind in _reason_providers:
            reasons.update(_reason_providers[kind](group))
    return reasons


def _take(job: Job, now) -> bool:
    """Mark the job as requeued, unless someone touched it since we read it."""
    new_status = JobStatus.RETRYING if job.status == JobStatus.RUNNING else job.status
    return bool(
        Job.objects.filter(pk=job.pk, status=job.status, updated_at=job.updated_at).update(
            status=new_status, updated_at=now, next_attempt_at=None
        )
    )


def requeue_stuck(
    *, older_than: timedelta, limit: int | None = None, dry_run: bool = False
) -> RequeueReport:
    """Find unfinished jobs untouched for ``older_than`` and send them again."""
    with exclusive("jobs.requeue") as held:
        if not held:
            logger.info("Requeue: another copy holds the lock; nothing to do")
            return RequeueReport(ran=False)
        return _requeue(older_than=older_than, limit=limit, dry_run=dry_run)


def _requeue(*, older_than: timedelta, limit: int | None, dry_run: bool) -> RequeueReport:
    now = timezone.now()
    cutoff = now - older_than
    report = RequeueReport()
    chunk: list[Job] = []

    def flush() -> None:
        reasons = _reasons(chunk)
        to_send: list[tuple[str, int]] = []
        with transaction.atomic():
            # Rows a worker or another requeue holds are skipped, not waited for.
            free = set(
                jobs_stuck(cutoff=cutoff, now=now)
                .select_for_update(skip_locked=True)
                .filter(pk__in=[job.pk for job in chunk])
                .values_list("pk", flat=True)
            )
            for job in chunk:
                report.found += 1
                report.found_by_reason[reasons[job.pk]] += 1
                if limit is not None and report.requeued + len(to_send) >= limit:
                    report.skipped["over --limit"] += 1
                elif dry_run:
                    report.listed.append((job.pk, job.channel, reasons[job.pk]))
                    to_send.append((job.channel, job.pk))
                elif job.pk in free and _take(job, now):
                    to_send.append((job.channel, job.pk))
                else:
                    report.skipped["changed since found (a worker or another requeue has it)"] += 1
        if dry_run:
            report.requeued += len(to_send)
        elif to_send:
            sent = async_to_sync(send_job_messages)(to_send)
            report.requeued += len(sent)
            failed = len(to_send) - len(sent)
            if failed:
                report.skipped["send failed (channel layer unreachable or full)"] += failed
        chunk.clear()

    for job in iter_stuck_jobs(cutoff=cutoff, now=now):
        chunk.append(job)
        if len(chunk) >= BATCH:
            flush()
    if chunk:
        flush()
    logger.info("Requeue: found %d, requeued %d, skipped %s", report.found, report.requeued, dict(report.skipped))
    return report
