"""The pages' server side: the job_progress tag, the favicon, the browsable API's login links."""

from __future__ import annotations

import json

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from jobs.models import Job, JobStatus
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def render(text: str, user, **context) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load job_progress %}" + text).render(Context({"request": request, **context}))


def test_mine_renders_a_live_region_and_the_module(user):
    html = render('{% job_progress "mine" kinds="payment book_batch" labels=labels links=links %}', user,
                  labels={"payment": "Order #{id}"}, links={"orders.order": "/#order-{id}"})
    assert 'data-job-progress="mine"' in html and 'data-ws-path="/ws/status/"' in html
    assert 'aria-live="polite"' in html and 'data-kinds="payment book_batch"' in html
    assert f'data-links="{json.dumps({"orders.order": "/#order-{id}"}).replace(chr(34), "&quot;")}"' in html
    assert '<script type="module" src="/static/jobs/progress.js"></script>' in html
    assert 'href="/static/jobs/progress.css"' in html


def test_a_job_id_renders_its_bar_as_it_stands(user):
    job = Job.objects.get(pk=make_order(user).job_id)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progress=60, message="Transaction 1a2b created; confirming")
    html = render("{% job_progress job_id %}", user, job_id=job.pk)
    assert f'data-job-progress="{job.pk}"' in html and f'data-job-url="/api/jobs/{job.pk}/"' in html
    assert 'role="progressbar"' in html and 'aria-valuenow="60"' in html and "width: 60%" in html
    assert "Transaction 1a2b created; confirming" in html
    # A Job works as well as its id; a retry's message (the vendor's words) is not shown.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RETRYING, message="Temporary problem (NewConnectionError)")
    html = render("{% job_progress job %}", user, job=Job.objects.get(pk=job.pk))
    assert "NewConnectionError" not in html and "trying again shortly" in html


def test_another_users_job_renders_no_state(user, make_user):
    theirs = make_order(make_user()).job_id
    Job.objects.filter(pk=theirs).update(message="Their secret")
    html = render("{% job_progress job_id %}", user, job_id=theirs)
    assert "Their secret" not in html and 'aria-valuenow="0"' in html


def test_anonymous_gets_nothing(django_user_model):
    from django.contrib.auth.models import AnonymousUser

    assert render('{% job_progress "mine" %}', AnonymousUser()).strip() == ""


def test_a_template_mistake_fails_loudly(user):
    with pytest.raises(TemplateSyntaxError, match="labels and links are dicts"):
        render('{% job_progress "mine" labels="[1]" %}', user)
    with pytest.raises(TemplateSyntaxError, match='takes "mine", a job id or a Job'):
        render('{% job_progress "my jobs" %}', user)


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"


def test_the_browsable_api_links_to_login_and_logout(client, user):
    anonymous = client.get("/api/orders/", HTTP_ACCEPT="text/html").content.decode()
    assert "href='/api/auth/login/?next=/api/orders/'" in anonymous
    assert client.get("/api/auth/login/?next=/api/orders/").status_code == 200
    client.force_login(user)
    signed_in = client.get("/api/orders/", HTTP_ACCEPT="text/html").content.decode()
    assert 'action="/api/auth/logout/?next=/api/orders/"' in signed_in and "Log out" in signed_in
    assert client.post("/api/auth/logout/?next=/api/orders/").status_code == 302
    assert client.get("/api/orders/", HTTP_ACCEPT="application/json").status_code in (401, 403)
