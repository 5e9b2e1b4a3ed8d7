"""Receipts: a paid order emails one receipt; a mail failure never unpays it."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core import mail

from jobs.models import Job
from orders.models import Order
from orders.tasks import send_receipt
from project.names import EMAILS, JOB_RUN, PAYMENTS
from tests.channels import deliver
from tests.factories import make_order

RECEIPT = send_receipt.module_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class BrokenMailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


async def run(channel: str, job_id: int) -> Job:
    await deliver(channel, {"type": JOB_RUN, "job": job_id})
    return await Job.objects.aget(pk=job_id)


async def paid_order(user) -> Order:
    order = await sync_to_async(make_order)(user)
    await run(PAYMENTS, order.job_id)
    return await Order.objects.aget(pk=order.pk)


async def test_a_paid_order_sends_exactly_one_receipt(channel_layer, sandbox_gateway, make_user):
    user = await sync_to_async(make_user)()
    user.email = "payer@example.com"
    await user.asave()
    order = await paid_order(user)
    receipt = await Job.objects.aget(kind=RECEIPT, subject_id=str(order.pk))
    assert receipt.channel == EMAILS
    job = await run(EMAILS, receipt.pk)
    await run(EMAILS, receipt.pk)  # a repeated delivery sends nothing more
    assert job.status == "ok" and job.message == f"Receipt for order #{order.pk} sent to payer@example.com"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["payer@example.com"]
    assert order.transaction_id in mail.outbox[0].body


async def test_a_failing_mail_server_leaves_the_order_paid(channel_layer, sandbox_gateway, make_user, settings):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenMailBackend"
    settings.PAYMENT_MAX_ATTEMPTS, settings.RECEIPT_MAX_ATTEMPTS = 3, 1
    user = await sync_to_async(make_user)()
    user.email = "payer@example.com"
    await user.asave()
    order = await paid_order(user)
    receipt = await Job.objects.aget(kind=RECEIPT, subject_id=str(order.pk))
    job = await run(EMAILS, receipt.pk)
    assert job.status == "failed" and "mail server down" in job.error
    assert (await Order.objects.aget(pk=order.pk)).status == "paid"


async def test_no_receipt_job_for_a_declined_payment(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user, nonce="fake-processor-declined-visa-nonce")
    await run(PAYMENTS, order.job_id)
    assert not await Job.objects.filter(kind=RECEIPT).aexists()
