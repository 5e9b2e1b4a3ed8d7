"""The durable job record: the source of truth for background work.

A channel message only wakes a worker up; everything a worker needs, and
everything a user sees, is in this row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Retrying"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RETRYING)
FINISHED = (JobStatus.OK, JobStatus.FAILED)


class Job(models.Model):
    # A declared kind's name ("payment"), or a task's function path.
    kind = models.CharField(max_length=200)
    channel = models.CharField(max_length=100)
    # Whose websockets hear of the job; none for work nobody asked for (cron).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs", null=True, blank=True
    )
    # The thing the job works on, as "<app_label>.<model>" plus its primary key;
    # blank for a task that names none.
    subject_type = models.CharField(max_length=100, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    # A task's {"args": [...], "kwargs": {...}}.
    payload = models.JSONField(default=dict, blank=True)
    # The alias of the Tasks API backend that enqueued it; blank for a declared kind.
    backend = models.CharField(max_length=100, blank=True)
    priority = models.SmallIntegerField(default=0)

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    # What a task returned, and each failed attempt's
    # {"exception_class_path", "traceback"}: TaskResult's return value and errors.
    result = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    # The worker ("host:pid") of each attempt, in order.
    worker_ids = models.JSONField(default=list, blank=True)
    # What a running job reported besides its progress (jobs.progress).
    metadata = models.JSONField(default=dict, blank=True)
    # For a chain: the index of the next step to run, and what the last
    # finished step returned, so a retry starts at the step that failed.
    step = models.PositiveSmallIntegerField(default=0)
    step_result = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The requeue scan seeks straight to the unfinished statuses, so its
            # cost follows the unfinished rows, not the table.  (A partial
            # index would be smaller, but SQLite cannot match its condition
            # against a query whose status list is bound as parameters.)
            models.Index(fields=["status", "updated_at"], name="job_status_updated"),
            # Requeue's scan for due times nobody woke (jobs.selectors.jobs_overdue).
            models.Index(fields=["status", "next_attempt_at"], name="job_status_due"),
            models.Index(fields=["user", "-created_at"], name="job_user_recent"),
            models.Index(fields=["subject_type", "subject_id"], name="job_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.pk} ({self.status})"

    @property
    def is_task(self) -> bool:
        return bool(self.backend)

    @property
    def subject_ref(self):
        from jobs.refs import ModelRef

        return ModelRef(label=self.subject_type, pk=self.subject_id)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED
