"""The pages' server side: the job_progress tag, the favicon, the browsable API's login links."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from books.kinds import BOOK, BOOK_BATCH
from jobs.models import Job, JobStatus
from orders.kinds import PAYMENT
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def render(text: str, user, **context) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load job_progress %}" + text).render(Context({"request": request, **context}))


def test_mine_renders_a_live_region_and_the_module(user):
    html = render('{% job_progress "mine" links=links %}', user, links={"orders.order": "/#order-{id}"})
    assert 'data-job-progress="mine"' in html and 'data-ws-path="/ws/status/"' in html
    assert 'aria-live="polite"' in html
    # Which jobs get a toast, and their titles, come with the jobs (their "title"), not from the page.
    assert "data-kinds" not in html and "data-labels" not in html
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
    with pytest.raises(TemplateSyntaxError, match="links is a dict"):
        render('{% job_progress "mine" links="[1]" %}', user)
    # The options a job's title replaced are refused, not ignored.
    for option in ('kinds="payment"', 'labels=\'{"payment": "Order #{id}"}\''):
        with pytest.raises(TemplateSyntaxError, match="unexpected keyword"):
            render(f'{{% job_progress "mine" {option} %}}', user)
    with pytest.raises(TemplateSyntaxError, match='takes "mine", a job id or a Job'):
        render('{% job_progress "my jobs" %}', user)


PAGE_SCRIPTS = ["static/app.js", "static/page.js", "static/catalogue.js", "jobs/static/jobs/progress.js"]
# A job kind written into a script: compared with, or assigned to, a string
# literal (job.kind === "payment", BOOK_KIND = "book"), or in a query (?kind=book_batch).
KIND_LITERAL = re.compile(r"""kind\w*\s*(?:[!=]==?|:|=)\s*["'`]|[?&]kind=\w""", re.IGNORECASE)


def test_the_page_reads_its_job_kinds_from_the_server_and_names_none_itself(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    found = re.search(r'<script id="job-kinds" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the index page carries no job-kinds"
    assert json.loads(found.group(1)) == {
        role: {"name": kind.name, "title": kind.title}
        for role, kind in {"payment": PAYMENT, "book": BOOK, "book_batch": BOOK_BATCH}.items()
    }
    # The widget is told nothing of kinds or titles.
    assert 'data-job-progress="mine"' in html and "data-kinds" not in html and "data-labels" not in html
    for script in PAGE_SCRIPTS:
        text = (Path(settings.BASE_DIR) / script).read_text()
        assert not KIND_LITERAL.findall(text), (script, KIND_LITERAL.findall(text))
        # Nor a title of a kind: "Order #" and "Batch #" come with the kinds.
        assert "Order #$" not in text and "Batch #$" not in text, script


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
