"""Send again whatever never finished: the database is the source of truth.

Channels delivers at most once: a message can expire, be refused with
``ChannelFull``, or die with its worker.  The job row survives all of that,
and this service finds unfinished rows nobody has touched for a while and
sends them to their channel again.

Safe beside live workers and beside another copy of itself: a job is taken
with a conditional UPDATE on the ``updated_at`` it was read with, so of two
copies only one sends it, and a worker that touched it in between wins.
Even a message sent twice is harmless, because workers claim jobs atomically.

A job whose message was not sent is handed back, as it was, by another
conditional UPDATE on the ``updated_at`` that taking it wrote: it is due
again at once, not hidden for another ``--older-than`` (issue #19), and a
worker that touched it in between still wins.  A copy that hands a job back
did not send it, so the other copy may; only a send that timed out may have
arrived after all, and then the job gets a second, harmless, message.  A
channel that answers ``ChannelFull`` gets no more sends in the run: its jobs
are left due for the next run, once workers have drained it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

import attrs
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from jobs.kinds import kind_of
from jobs.locks import exclusive
from jobs.messages import SendFailure, SendResult, send_job_messages
from jobs.models import Job, JobStatus
from jobs.selectors import iter_stuck_jobs, jobs_to_requeue
from jobs.services import job_notify

logger = logging.getLogger(__name__)

BATCH = 200

STATUS_REASONS = {
    JobStatus.PENDING: "never started (message lost, expired or refused)",
    JobStatus.RETRYING: "retry due",
    JobStatus.RUNNING: "left running by a dead worker",
}

#: Why ``requeue_stuck`` skipped a job whose message was not sent, by cause.
NOT_SENT = {
    SendFailure.FULL: "not sent, left due: channel full",
    SendFailure.TIMEOUT: "not sent, left due: channel layer timed out",
    SendFailure.UNREACHABLE: "not sent, left due: channel layer unreachable",
}


@attrs.define
class RequeueReport:
    #: False when another copy held the run lock and this one did nothing.
    ran: bool = True
    found: int = 0
    requeued: int = 0
    found_by_reason: Counter = attrs.Factory(Counter)
    skipped: Counter = attrs.Factory(Counter)
    listed: list[tuple[int, str, str]] = attrs.Factory(list)
    #: (channel, SendFailure) -> jobs whose message was not sent
    unsent: Counter = attrs.Factory(Counter)
    #: channel -> its capacity, for each channel that answered ``ChannelFull``
    full: dict[str, int] = attrs.Factory(dict)

    @property
    def send_failures(self) -> int:
        return sum(self.unsent.values())

    def count_unsent(self, to_send: list[tuple[str, int]], result: SendResult) -> None:
        """Add the sends that failed, by channel and cause: the command names each."""
        channels = {job_id: channel for channel, job_id in to_send}
        for job_id, cause in result.failed.items():
            self.unsent[(channels[job_id], cause)] += 1
        self.full.update(result.full)


def _reasons(jobs: list[Job]) -> dict[int, str]:
    reasons = {job.pk: STATUS_REASONS[job.status] for job in jobs}
    by_kind: dict[str, list[Job]] = {}
    for job in jobs:
        by_kind.setdefault(job.kind, []).append(job)
    for name, group in by_kind.items():
        if (kind := kind_of(name)) is not None and (explain := kind.hook("stuck_reasons")) is not None:
            reasons.update(explain(jobs=group))
    return reasons


def _taken_status(job: Job) -> str:
    # A dead worker's job must be claimable again.
    return JobStatus.RETRYING if job.status == JobStatus.RUNNING else job.status


def _take(job: Job, now) -> bool:
    """Mark the job as requeued, unless someone touched it since we read it."""
    return bool(
        Job.objects.filter(pk=job.pk, status=job.status, updated_at=job.updated_at).update(
            status=_taken_status(job), updated_at=now, next_attempt_at=None
        )
    )


def _hand_back(jobs: list[Job], now) -> None:
    """Undo ``_take`` for jobs whose message was not sent, so they are due again at once.

    Only where the row still holds what ``_take`` wrote: a worker that
    claimed the job since wins, as it does against ``_take``.
    """
    with transaction.atomic():
        for job in jobs:
            Job.objects.filter(pk=job.pk, status=_taken_status(job), updated_at=now).update(
                status=job.status, updated_at=job.updated_at, next_attempt_at=job.next_attempt_at
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
    # SQLite gives no isolation between a cursor and writes on its own
    # connection: a job handed back under the scan's cursor may show up again.
    handed_back: set[int] = set()

    def flush() -> None:
        reasons = _reasons(chunk)
        to_send: list[tuple[str, int]] = []
        with transaction.atomic():
            # Rows a worker or another requeue holds are skipped, not waited for.
            free = set(
                jobs_to_requeue(cutoff=cutoff, now=now)
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
                elif job.channel in report.full:
                    # Refused earlier in this run: it stays full until workers drain it.
                    report.unsent[(job.channel, SendFailure.FULL)] += 1
                    report.skipped[NOT_SENT[SendFailure.FULL]] += 1
                elif job.pk in free and _take(job, now):
                    to_send.append((job.channel, job.pk))
                else:
                    report.skipped["changed since found (a worker or another requeue has it)"] += 1
        if dry_run:
            report.requeued += len(to_send)
        elif to_send:
            result = async_to_sync(send_job_messages)(to_send)
            report.requeued += len(result.sent)
            report.count_unsent(to_send, result)
            for cause in result.failed.values():
                report.skipped[NOT_SENT[cause]] += 1
            _hand_back([job for job in chunk if job.pk in result.failed], now)
            handed_back.update(result.failed)
        chunk.clear()

    for job in iter_stuck_jobs(cutoff=cutoff, now=now):
        if job.pk in handed_back:
            continue
        chunk.append(job)
        if len(chunk) >= BATCH:
            flush()
    if chunk:
        flush()
    logger.info("Requeue%s: found %d, %s %d, skipped %s", " (dry run, nothing changed)" if dry_run else "",
                report.found, "would requeue" if dry_run else "requeued", report.requeued, dict(report.skipped))
    return report


NOT_FAILED = "not failed (only failed jobs are retried)"
SEND_FAILED = "send failed (channel layer unreachable or full)"


def requeue_failed(*, job_ids: Iterable[int]) -> RequeueReport:
    """Send failed jobs to their channels again, by hand (the admin's "retry").

    The same path as ``requeue_stuck``: each job is taken with a conditional
    UPDATE, so of two clicks only one sends it, and ``send_job_messages``
    sends the messages, here after commit.  A retried job is ``pending`` with
    its attempts back at zero: it may have failed by spending them all, and
    it deserves the full budget again.  Its progress is kept.  A message that
    cannot be sent leaves the job pending, for the requeue command to send.
    Call it outside a transaction: ``requeued`` counts the messages sent,
    and they are sent when the transaction commits.
    """
    ids = sorted(set(job_ids))
    now = timezone.now()
    report = RequeueReport()
    to_send: list[tuple[str, int]] = []
    with transaction.atomic():
        jobs = list(Job.objects.select_for_update().filter(pk__in=ids, status=JobStatus.FAILED).order_by("pk"))
        report.found = len(jobs)
        if len(ids) > len(jobs):
            report.skipped[NOT_FAILED] += len(ids) - len(jobs)
        refused: dict[int, str] = {}
        for name in {job.kind for job in jobs}:
            if (kind := kind_of(name)) is not None and (reopen := kind.hook("reopen")) is not None:
                refused.update(reopen(jobs=[job for job in jobs if job.kind == name]))
        for job in jobs:
            if job.pk in refused:
                report.skipped[refused[job.pk]] += 1
            elif _reopen(job, now):
                to_send.append((job.channel, job.pk))
            else:
                report.skipped["changed since found (a worker or another requeue has it)"] += 1
        # After the "pending" events that _reopen queued, like job_create.
        transaction.on_commit(lambda: _send_now(report, to_send))
    logger.info("Retry of failed jobs: requeued %d, skipped %s", report.requeued, dict(report.skipped))
    return report


def _reopen(job: Job, now) -> bool:
    """Put a failed job back to pending, unless someone touched it since we read it."""
    reopened = Job.objects.filter(pk=job.pk, status=JobStatus.FAILED, updated_at=job.updated_at).update(
        status=JobStatus.PENDING,
        attempts=0,
        next_attempt_at=None,
        finished_at=None,
        error="",
        traceback="",
        message="Queued again",
        updated_at=now,
    )
    if not reopened:
        return False
    # The old error leaves the row, so it goes to the log.
    logger.info("Retrying failed %s job %s after %d attempt(s); it failed with: %s",
                job.kind, job.pk, job.attempts, job.error)
    job.refresh_from_db()
    job_notify(job=job, message=job.message)
    return True


def _send_now(report: RequeueReport, to_send: list[tuple[str, int]]) -> None:
    if not to_send:
        return
    result = async_to_sync(send_job_messages)(to_send)
    report.requeued += len(result.sent)
    report.count_unsent(to_send, result)
    if result.failed:
        report.skipped[SEND_FAILED] += len(result.failed)
