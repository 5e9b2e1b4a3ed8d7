"""The hand-built event report stays identical to the API's serializer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.serializers import JobSerializer, job_report
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def test_job_report_matches_the_serializer_for_every_state(user):
    job = Job.objects.get(pk=make_order(user).job_id)
    now = timezone.now()
    states = [
        {},
        {"status": "running", "attempts": 1, "last_attempt_at": now, "progress": 10, "message": "Started"},
        {"status": "retrying", "next_attempt_at": now + timedelta(seconds=3), "error": "timeout"},
        {"status": "ok", "progress": 100, "finished_at": now, "error": ""},
    ]
    for fields in states:
        for name, value in fields.items():
            setattr(job, name, value)
        job.save()
        job.refresh_from_db()
        assert job_report(job) == dict(JobSerializer(job).data)
