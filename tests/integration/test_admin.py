"""The admin: every changelist with its filters and search, the job pages, and the retry action."""

from __future__ import annotations


import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from books.models import Author, Book, BookBatch, Person, Subject
from jobs.models import Job, JobStatus
from orders.models import Order, OrderStatus
from project.names import JOB_RUN, PAYMENTS
from tests.channels import IN_MEMORY_EVENTS, deliver, drain, received
from tests.factories import make_order
from devtools.processes import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nTransientError: <gateway> answered 503'


def failed_payment(user, *, order_status: str = OrderStatus.FAILED, **order_fields) -> Order:
    """An order whose payment job spent its attempts and failed."""
    order = make_order(user)
    Job.objects.filter(pk=order.job_id).update(
        status=JobStatus.FAILED,
        attempts=10,
        progress=10,
        error="Payment gateway answered 503",
        traceback=TRACEBACK,
        message="Payment failed: Payment gateway answered 503",
        finished_at=timezone.now(),
    )
    Order.objects.filter(pk=order.pk).update(status=order_status, error="Payment gateway answered 503", **order_fields)
    return Order.objects.get(pk=order.pk)


def retry(admin_client, *job_ids: int):
    return admin_client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "retry_selected", ACTION_CHECKBOX_NAME: [str(pk) for pk in job_ids]},
        follow=True,
    )


def shown(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_retry_requeues_a_failed_job_after_commit(admin_client, channel_layer, user):
    order = failed_payment(user)
    received(channel_layer, PAYMENTS)  # the original message, sent when the order was made

    response = retry(admin_client, order.job_id)

    assert response.status_code == 200
    assert shown(response) == ["1 job requeued."]
    job = Job.objects.get(pk=order.job_id)
    assert job.status == JobStatus.PENDING
    # A fresh budget: it failed by spending all its attempts.
    assert job.attempts == 0 and job.error == "" and job.traceback == "" and job.finished_at is None
    assert job.progress == 10  # never moved backwards
    assert received(channel_layer, PAYMENTS) == [{"type": JOB_RUN, "job": job.pk}]
    # The order is open again, so the worker charges or confirms it rather than calling it paid.
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and order.error == ""


def test_retry_skips_what_it_must_not_retry_and_says_why(admin_client, channel_layer, user):
    declined = failed_payment(user, order_status=OrderStatus.DECLINED)
    running = make_order(user)
    received(channel_layer, PAYMENTS)

    response = retry(admin_client, declined.job_id, running.job_id)

    assert shown(response) == [
        "0 jobs requeued.",
        "1 skipped: not failed (only failed jobs are retried)",
        "1 skipped: payment declined (the customer must pay again)",
    ]
    assert Job.objects.get(pk=declined.job_id).status == JobStatus.FAILED
    assert Order.objects.get(pk=declined.pk).status == OrderStatus.DECLINED
    assert received(channel_layer, PAYMENTS) == []


def test_retry_with_the_channel_layer_down_leaves_the_job_pending_for_requeue(admin_client, settings, user):
    order = failed_payment(user)
    settings.CHANNEL_LAYERS = {
        **IN_MEMORY_EVENTS,
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 0.5}]},
        }
    }

    response = retry(admin_client, order.job_id)

    assert shown(response) == [
        "0 jobs requeued.",
        "1 skipped: send failed (channel layer unreachable or full); "
        "they stay pending and the requeue command will send them",
    ]
    assert Job.objects.get(pk=order.job_id).status == JobStatus.PENDING


def test_retry_needs_change_permission(client, channel_layer, make_user):
    from django.contrib.auth.models import Permission

    viewer = make_user()
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(viewer)
    order = failed_payment(viewer)
    received(channel_layer, PAYMENTS)

    page = client.get(reverse("admin:jobs_job_changelist"))
    assert page.status_code == 200 and b"retry_selected" not in page.content
    retry(client, order.job_id)
    assert Job.objects.get(pk=order.job_id).status == JobStatus.FAILED
    assert received(channel_layer, PAYMENTS) == []


async def test_a_retried_payment_is_charged_once_and_paid(admin_client, channel_layer, sandbox_gateway, user):
    # The gateway was down for every attempt; now it is back.
    order = await sync_to_async(failed_payment)(user)
    await sync_to_async(retry)(admin_client, order.job_id)

    await deliver(PAYMENTS, *await drain(channel_layer, PAYMENTS, quiet=0.05))

    job = await Job.objects.aget(pk=order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == JobStatus.OK and job.attempts == 1
    assert order.status == OrderStatus.PAID and order.transaction_id


# --- every admin page renders ----------------------------------------------------------


@pytest.fixture
def catalogue(user):
    order = failed_payment(user)
    batch = BookBatch.objects.create(user=user, total=1)
    book = Book.objects.create(isbn="9780345418913", title="The Hitchhiker's Guide", status="found", batch=batch)
    book.authors.add(Author.objects.create(key="/authors/ol1a", name="Douglas Adams",
                                           openlibrary_url="https://openlibrary.org/authors/OL1A"))
    book.people.add(Person.objects.create(key="name:arthur dent", name="Arthur Dent",
                                          openlibrary_url="javascript:alert(1)"))
    book.subjects.add(Subject.objects.create(key="name:fiction", name="Fiction"))
    return {"order": order, "batch": batch, "book": book}


@pytest.mark.parametrize(
    "name, query",
    [
        ("jobs_job", ""),
        ("jobs_job", "?kind__exact=payment&status__exact=failed"),
        ("jobs_job", "?q=abc"),
        ("jobs_job", "?q=1"),
        ("jobs_job", "?created_at__year=2026&channel__exact=payments"),
        ("jobs_job", "?created_at__gte=2020-01-01+00%3A00%3A00%2B00%3A00"),
        ("orders_order", "?status__exact=failed&q=user"),
        ("orders_order", "?q=42"),
        ("books_book", "?status__exact=found&q=Adams"),
        ("books_book", "?q=9780345418913"),
        ("books_bookbatch", "?q=1"),
        ("books_author", "?q=Adams&o=3"),
        ("books_person", "?q=Dent"),
        ("books_subject", "?q=Fiction"),
    ],
)
def test_changelists_render_with_filters_and_search(admin_client, catalogue, name, query):
    response = admin_client.get(reverse(f"admin:{name}_changelist") + query)
    assert response.status_code == 200


def test_job_page_shows_traceback_progress_and_a_link_to_its_subject(admin_client, catalogue):
    order = catalogue["order"]
    response = admin_client.get(reverse("admin:jobs_job_change", args=[order.job_id]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<pre" in page and "TransientError: &lt;gateway&gt; answered 503" in page
    assert '<progress value="10" max="100">' in page
    assert f'href="{reverse("admin:orders_order_change", args=[order.pk])}"' in page
    assert 'name="_save"' not in page  # read-only


def test_change_pages_render(admin_client, catalogue):
    urls = [
        reverse("admin:orders_order_change", args=[catalogue["order"].pk]),
        reverse("admin:books_book_change", args=[catalogue["book"].pk]),
        reverse("admin:books_bookbatch_change", args=[catalogue["batch"].pk]),
        reverse("admin:books_author_change", args=[Author.objects.get().pk]),
    ]
    for url in urls:
        assert admin_client.get(url).status_code == 200, url
    people = admin_client.get(reverse("admin:books_person_changelist")).content.decode()
    assert "javascript:" not in people


def test_jobs_are_read_only_down_to_the_delete_button(admin_client, catalogue):
    job_id = catalogue["order"].job_id
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job_id])).content.decode()
    assert reverse("admin:jobs_job_delete", args=[job_id]) not in page and "deletelink" not in page
    changelist = admin_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert 'value="delete_selected"' not in changelist and 'value="retry_selected"' in changelist
    assert admin_client.post(reverse("admin:jobs_job_delete", args=[job_id]), {"post": "yes"}).status_code == 403
    assert Job.objects.filter(pk=job_id).exists()
