"""The orders, jobs and token API, as a client sees it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from jobs.models import Job
from orders.models import Order
from project.names import JOB_RUN, PAYMENTS
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def test_token_login_then_token_auth(make_user):
    make_user("carol", password="pw-Secret-123")
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "carol", "password": "pw-Secret-123"}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/orders/").status_code == 200


def test_wrong_password_is_a_400_with_a_message(make_user):
    make_user("dave")
    response = APIClient().post("/api/auth/token/", {"username": "dave", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "credentials" in response.json()["message"]


def test_anonymous_is_refused():
    response = APIClient().get("/api/orders/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_create_answers_202_and_sends_the_job_only_after_commit(api, user, channel_layer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/orders/", {"amount": "12.50", "nonce": "fake-valid-nonce"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["amount"] == "12.50"
    assert response["Location"] == body["url"] and body["url"].endswith(f"/api/orders/{body['id']}/")
    job = Job.objects.get(pk=body["job"])
    assert (job.kind, job.channel, job.status, job.user) == ("payment", PAYMENTS, "pending", user)
    assert (job.subject_type, job.subject_id) == ("orders.order", str(body["id"]))
    # Nothing was sent inside the transaction; the send is a commit hook.
    assert callbacks, "the send waits for the commit"
    for callback in callbacks:
        callback()
    from asgiref.sync import async_to_sync

    assert async_to_sync(channel_layer.receive)(PAYMENTS) == {"type": JOB_RUN, "job": job.pk}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"amount": "-1.00", "nonce": "fake-valid-nonce"}, "amount"),
        ({"amount": "0", "nonce": "fake-valid-nonce"}, "amount"),
        ({"amount": "twelve", "nonce": "fake-valid-nonce"}, "amount"),
        ({"amount": "1.234", "nonce": "fake-valid-nonce"}, "amount"),
        ({"amount": "1e30", "nonce": "fake-valid-nonce"}, "amount"),
        ({"amount": "NaN", "nonce": "fake-valid-nonce"}, "amount"),
        ({"amount": "12.50"}, "nonce"),
        ({"amount": "12.50", "nonce": ""}, "nonce"),
        ({"amount": "12.50", "nonce": "x" * 101}, "nonce"),
        ({"nonce": "fake-valid-nonce"}, "amount"),
    ],
)
def test_bad_orders_get_a_400_naming_the_field(api, body, field):
    response = api.post("/api/orders/", body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid"
    assert field in data["fields"]
    assert data["message"].startswith(f"{field}:")
    assert not Order.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"12.50"', b"null"])
def test_malformed_bodies_get_a_400(api, raw):
    response = api.generic("POST", "/api/orders/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"]


def test_orders_and_jobs_of_other_users_are_404(api, make_user):
    other = make_user()
    theirs = make_order(other)
    mine = make_order(api.handler._force_user)
    assert [o["id"] for o in api.get("/api/orders/").json()["results"]] == [mine.pk]
    assert api.get(f"/api/orders/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/jobs/{theirs.job_id}/").status_code == 404
    assert api.get(f"/api/orders/{mine.pk}/").status_code == 200


def test_job_report_has_the_documented_shape(api, user):
    order = make_order(user)
    job = api.get(f"/api/jobs/{order.job_id}/").json()
    assert job["kind"] == "payment" and job["status"] == "pending"
    assert job["progress"] == 0 and job["attempts"] == 0 and job["error"] == ""
    assert job["subject"] == {"type": "orders.order", "id": str(order.pk)}
    assert {"created_at", "updated_at", "finished_at", "next_attempt_at"} <= job.keys()


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Nothing at /api/nothing-here/."}


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
