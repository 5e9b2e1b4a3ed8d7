from __future__ import annotations

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.kinds import job_title
from jobs.models import Job, JobStatus
from project.api import QueryParams

# A job's kind: a declared kind's name ("payment", "book_batch"), or a
# task's function path ("orders.tasks.send_receipt").
KIND_PATTERN = r"\A[A-Za-z_][A-Za-z0-9_.]*\Z"


class JobSubjectSerializer(serializers.Serializer):
    type = serializers.CharField(help_text='"<app_label>.<model>" of the object the job works on.')
    id = serializers.CharField()


class JobSerializer(serializers.ModelSerializer):
    """The job report: the same shape over HTTP and in websocket events."""

    subject = serializers.SerializerMethodField()
    title = serializers.SerializerMethodField(
        help_text="What the page calls the job (\"Order #12\", a task's name); empty for a job shown inside another's."
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "attempts",
            "error",
            "message",
            "subject",
            "title",
            "metadata",
            "created_at",
            "updated_at",
            "last_attempt_at",
            "next_attempt_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_title(self, job: Job) -> str:
        return job_title(kind=job.kind, backend=job.backend, subject_id=job.subject_id)

    @extend_schema_field(JobSubjectSerializer)
    def get_subject(self, job: Job) -> dict:
        return {"type": job.subject_type, "id": job.subject_id}


def _iso(value) -> str | None:
    # DRF's DateTimeField output: ISO 8601 in the current zone, UTC as "Z".
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_report(job: Job) -> dict:
    """The job as plain JSON-ready data: the same shape as ``JobSerializer``.

    Built by hand because it runs for every event a worker pushes, where
    DRF's per-instance field setup was the biggest single cost; a test keeps
    the two identical.
    """
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "attempts": job.attempts,
        "error": job.error,
        "message": job.message,
        "subject": {"type": job.subject_type, "id": job.subject_id},
        "title": job_title(kind=job.kind, backend=job.backend, subject_id=job.subject_id),
        "metadata": job.metadata,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "last_attempt_at": _iso(job.last_attempt_at),
        "next_attempt_at": _iso(job.next_attempt_at),
        "finished_at": _iso(job.finished_at),
    }


class JobFilterSerializer(QueryParams):
    """The job list's query parameters; a malformed or unknown one is a 400 naming it."""

    status = serializers.ChoiceField(required=False, choices=JobStatus.choices, help_text="Jobs in this status.")
    kind = serializers.CharField(
        required=False,
        max_length=200,
        validators=[RegexValidator(KIND_PATTERN, "A kind is letters, digits, '_' and '.', e.g. book_batch.")],
        help_text="Jobs of this kind: payment, book or book_batch, or a task's path (orders.tasks.send_receipt).",
    )
    created_from = serializers.DateField(
        required=False, help_text="Jobs created on this day (YYYY-MM-DD, in the server's time zone) or later."
    )
    created_to = serializers.DateField(
        required=False, help_text="Jobs created on this day (YYYY-MM-DD, in the server's time zone) or earlier."
    )
