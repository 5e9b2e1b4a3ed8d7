from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job


class JobSubjectSerializer(serializers.Serializer):
    type = serializers.CharField(help_text='"<app_label>.<model>" of the object the job works on.')
    id = serializers.CharField()


class JobSerializer(serializers.ModelSerializer):
    """The job report: the same shape over HTTP and in websocket events."""

    subject = serializers.SerializerMethodField()

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
            "created_at",
            "updated_at",
            "last_attempt_at",
            "next_attempt_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(JobSubjectSerializer)
    def get_subject(self, job: Job) -> dict:
        return {"type": job.subject_type, "id": job.subject_id}


def job_report(job: Job) -> dict:
    """The job as plain JSON-ready data (a plain dict, so msgpack takes it)."""
    return dict(JobSerializer(job).data)
