"""What a job tells the person who started it is plain; its ``error`` keeps the vendor's words.

The page shows a job's message; the API keeps the precise error for developers.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.core import mail

from jobs.models import Job
from orders.models import OrderStatus
from orders.tasks import send_receipt
from project.names import EMAILS
from tests.factories import make_order
from tests.integration.test_payment_outcomes import attempt
from tests.integration.test_receipts import paid_order, run

RECEIPT = send_receipt.module_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

# A vendor's words, codes and exception names never reach the person paying.
VENDOR = re.compile(r"payment_method_nonce|gateway|\(\d{4}\)|[A-Z][a-z]+Error|Exception", re.IGNORECASE)


@pytest.mark.parametrize(
    "nonce, amount, status, message, error",
    [
        ("fake-processor-hard-declined-visa-nonce", "12.00", OrderStatus.DECLINED,
         "Payment declined: Expired Card", "Expired Card (2004)"),
        ("fake-gateway-rejected-fraud-nonce", "12.00", OrderStatus.DECLINED,
         "Payment declined: the payment service refused this card", "Gateway rejected: fraud"),
        ("not-a-sandbox-nonce", "12.00", OrderStatus.FAILED,
         "Payment failed: the payment method was not accepted. Please pay again with another one",
         "payment_method_nonce"),
    ],
)
async def test_a_failed_payment_says_why_in_plain_words(channel_layer, sandbox_gateway, user,
                                                      nonce, amount, status, message, error):
    order = await sync_to_async(make_order)(user, amount=amount, nonce=nonce)
    order, job = await attempt(order)
    assert job.status == "failed" and order.status == status
    assert job.message == message and not VENDOR.search(job.message)
    assert error in job.error and error in order.error


async def test_a_receipt_without_an_address_never_says_sent(channel_layer, events_layer, sandbox_gateway, user,
                                                              settings):
    # Nothing held back: every state the job passes through may be heard.
    settings.JOBS_EVENT_HOLD = settings.JOBS_EVENT_INTERVAL = 0
    assert user.email == ""
    order = await paid_order(user)
    receipt = await Job.objects.aget(kind=RECEIPT, subject_id=str(order.pk))
    # Every message the user's sockets hear about the receipt, in order.
    await events_layer.group_add(f"user.{user.pk}", "listener")
    job = await run(EMAILS, receipt.pk)
    said = []
    while not said or said[-1][0] not in ("ok", "failed"):
        event = await events_layer.receive("listener")
        if event["job"]["id"] == receipt.pk:
            said.append((event["job"]["status"], event["message"]))
    no_address = f"No receipt for order #{order.pk}: there is no email address on your account"
    # The claim's "Started" at most, then only the truth: it was never sent, never "sent".
    assert said[-1] == ("ok", no_address) and {text for _, text in said} <= {"Started", no_address}, said
    assert job.status == "ok" and job.message == no_address and mail.outbox == []
