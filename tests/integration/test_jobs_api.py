"""``GET /api/jobs/``: filtered by status, kind and day; an unknown or malformed parameter is a 400."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [job["id"] for job in response.json()["results"]]


@pytest.fixture
def jobs(user):
    """A pending payment, a failed one, and an ok receipt created two days ago."""
    pending, failed = make_order(user).job_id, make_order(user).job_id
    Job.objects.filter(pk=failed).update(status=JobStatus.FAILED)
    receipt = Job.objects.create(kind="receipt", channel="emails", user=user, subject_type="orders.order",
                                 subject_id="1", status=JobStatus.OK)
    Job.objects.filter(pk=receipt.pk).update(created_at=timezone.now() - timedelta(days=2))
    return {"pending": pending, "failed": failed, "receipt": receipt.pk}


def test_filters_by_status_kind_and_day(api, jobs):
    assert ids(api.get("/api/jobs/")) == [jobs["failed"], jobs["pending"], jobs["receipt"]]
    assert ids(api.get("/api/jobs/?status=failed")) == [jobs["failed"]]
    assert ids(api.get("/api/jobs/?kind=receipt")) == [jobs["receipt"]]
    assert ids(api.get("/api/jobs/?kind=payment&status=pending")) == [jobs["pending"]]
    assert ids(api.get("/api/jobs/?kind=book_batch")) == []
    today, two_days_ago = timezone.localdate(), timezone.localdate() - timedelta(days=2)
    assert ids(api.get(f"/api/jobs/?created_from={today}")) == [jobs["failed"], jobs["pending"]]
    assert ids(api.get(f"/api/jobs/?created_to={two_days_ago}")) == [jobs["receipt"]]
    assert ids(api.get(f"/api/jobs/?created_from={two_days_ago}&created_to={two_days_ago}")) == [jobs["receipt"]]
    # Pagination's and DRF's own parameters are known to every list.
    assert ids(api.get("/api/jobs/?status=failed&page=1&page_size=1&format=json")) == [jobs["failed"]]


def test_filters_never_show_another_users_jobs(api, jobs, make_user):
    make_order(make_user())
    assert len(ids(api.get("/api/jobs/?kind=payment"))) == 2


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("statu=failed", "statu", "Unknown parameter; this list takes status, kind, created_from, created_to"),
        ("status=done", "status", '"done" is not a valid choice.'),
        ("status=", "status", '"" is not a valid choice.'),
        ("status=ok&status=failed", "status", "Give it once."),
        ("kind=Book-Batch", "kind", "A kind is letters, digits"),
        ("kind=", "kind", "This field may not be blank."),
        ("created_from=yesterday", "created_from", "Date has wrong format."),
        ("created_to=2026-02-30", "created_to", "Date has wrong format."),
    ],
)
def test_an_unknown_or_malformed_parameter_is_a_400_naming_it(api, jobs, query, field, says):
    response = api.get(f"/api/jobs/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == [field]
    assert body["message"].startswith(f"{field}: {says}"), body["message"]


def test_the_detail_takes_no_filter(api, jobs):
    # Only the list is filtered: the detail answers whatever the query says.
    assert api.get(f"/api/jobs/{jobs['failed']}/?status=ok").status_code == 200


def test_the_schema_documents_the_filters(api):
    schema = api.get("/api/schema/?format=json").json()
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/jobs/"]["get"]["parameters"]}
    assert set(params) == {"status", "kind", "created_from", "created_to", "page", "page_size"}
    assert params["created_from"]["format"] == "date" and params["kind"]["pattern"]
