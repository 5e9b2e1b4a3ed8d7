"""Every outcome the gateway can give, through the payments consumer: only the full amount,
for this order, is ever "paid"; everything else is a failure a person can see.

Against the sandbox gateway in a process of its own, answering with
Braintree's test nonces and test amounts (and ours in their style).
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from devtools.stack import MERCHANT_KEY
from integrations.gateway import GatewayClient
from jobs.models import Job
from orders.models import Order, OrderStatus
from orders.services import payment_reopen
from project.names import JOB_RUN, PAYMENTS
from tests.channels import deliver
from tests.conftest import sales_of
from tests.factories import make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60), pytest.mark.engine]


def reopen(job: Job) -> dict[int, str]:
    """The admin's retry, as it runs: inside the retry's transaction."""
    with transaction.atomic():
        return payment_reopen(jobs=[job])


async def attempt(order: Order) -> tuple[Order, Job]:
    """One delivery of the order's job message; the order and job as they stand after it."""
    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})
    return await Order.objects.aget(pk=order.pk), await Job.objects.aget(pk=order.job_id)


async def until_done(order: Order, *, attempts: int = 10) -> tuple[Order, Job]:
    """Deliver again whenever the job waits for a retry, until it is finished."""
    for _ in range(attempts):
        order, job = await attempt(order)
        if job.status in ("ok", "failed"):
            return order, job
        await Job.objects.filter(pk=job.pk).aupdate(next_attempt_at=None)
    raise AssertionError(f"job still {job.status} after {attempts} deliveries")


@pytest.fixture
def fast_retries(settings):
    settings.JOBS_RETRY_BASE_DELAY = settings.JOBS_RETRY_MAX_DELAY = 30  # only our deliveries run it


def money_for(gateway_url: str, order: Order) -> list:
    return [t for t in sales_of(gateway_url, order.reference) if t.holds_money]


async def test_an_authorized_only_sale_is_submitted_for_settlement_then_paid(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user, nonce="fake-valid-authorize-only-nonce")
    order, job = await attempt(order)
    assert job.status == "ok" and order.status == OrderStatus.PAID
    assert order.transaction_status == "submitted_for_settlement"
    [sale] = await sync_to_async(money_for)(sandbox_gateway, order)
    assert sale.id == order.transaction_id and sale.status == "submitted_for_settlement"


async def test_a_sale_still_authorizing_is_asked_about_again_never_paid_early(
    channel_layer, sandbox_gateway, user, fast_retries
):
    order = await sync_to_async(make_order)(user, nonce="fake-authorizing-nonce")
    order, job = await attempt(order)
    assert job.status == "retrying" and order.status == OrderStatus.PROCESSING
    assert order.transaction_status == "authorizing"
    await asyncio.sleep(1.1)  # the sandbox's issuer answers after a second
    order, job = await until_done(order)
    assert job.status == "ok" and order.status == OrderStatus.PAID
    assert len(await sync_to_async(money_for)(sandbox_gateway, order)) == 1


async def test_a_partial_amount_needs_review_and_is_never_paid(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user, amount="10.00", nonce="fake-valid-partial-amount-nonce")
    order, job = await attempt(order)
    assert order.status == OrderStatus.REVIEW and job.status == "failed"
    assert "5.00" in order.error and "10.00" in order.error
    assert job.message.startswith("Payment needs review:")
    # A person must settle it: the admin's retry refuses.
    refused = await sync_to_async(reopen)(job)
    assert "review" in refused[job.pk]


async def test_a_soft_decline_is_retried_then_declined(channel_layer, sandbox_gateway, user, settings, fast_retries):
    settings.PAYMENT_DECLINE_ATTEMPTS = 2
    order = await sync_to_async(make_order)(user, nonce="fake-processor-declined-visa-nonce")
    order, job = await attempt(order)
    assert job.status == "retrying" and order.status == OrderStatus.PROCESSING
    order, job = await until_done(order)
    assert job.status == "failed" and job.attempts == 2
    assert order.status == OrderStatus.DECLINED and order.error == "Do Not Honor (2000)"
    ledger = await sync_to_async(sales_of)(sandbox_gateway, order.reference)
    assert [t.status for t in ledger] == ["processor_declined"] * 2  # two tries, no money


async def test_a_processor_outage_is_never_a_decline_and_can_be_retried(
    channel_layer, sandbox_gateway, user, settings, fast_retries
):
    settings.PAYMENT_MAX_ATTEMPTS = 2
    order = await sync_to_async(make_order)(user, nonce="fake-processor-failure-visa-nonce")
    order, job = await attempt(order)
    assert job.status == "retrying" and "Processor Network Unavailable" in job.error
    order, job = await until_done(order)
    assert job.status == "failed" and order.status == OrderStatus.FAILED
    assert "Processor Network Unavailable" in order.error
    # Failed, not declined: the admin's retry may run it again.
    assert await sync_to_async(reopen)(job) == {}


@pytest.mark.parametrize(
    "nonce, amount, error",
    [
        ("fake-processor-hard-declined-visa-nonce", "12.00", "Expired Card (2004)"),
        ("fake-gateway-rejected-fraud-nonce", "12.00", "Gateway rejected: fraud"),
        # Braintree's test amounts: the amount chooses the processor's answer.
        ("fake-valid-nonce", "2004.00", "Expired Card (2004)"),
        ("fake-valid-nonce", "5001.00", "Gateway rejected: application_incomplete"),
    ],
)
async def test_hard_declines_and_rejections_decline_at_once(channel_layer, sandbox_gateway, user, nonce, amount, error):
    order = await sync_to_async(make_order)(user, amount=amount, nonce=nonce)
    order, job = await attempt(order)
    assert job.status == "failed" and job.attempts == 1
    assert order.status == OrderStatus.DECLINED and order.error == error
    assert await sync_to_async(money_for)(sandbox_gateway, order) == []


@pytest.mark.parametrize("amount, reason", [("2001.00", "Insufficient Funds (2001)"), ("3000.00", "Processor Network")])
async def test_test_amounts_for_soft_declines_and_outages_retry(channel_layer, sandbox_gateway, user, fast_retries,
                                                                amount, reason):
    order = await sync_to_async(make_order)(user, amount=amount)
    order, job = await attempt(order)
    assert job.status == "retrying" and reason in job.error


async def test_a_charge_from_another_database_with_the_same_order_id_is_not_adopted(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user)
    # A settled sale left by a deployment whose orders were bare database ids.
    client = GatewayClient(base_url=sandbox_gateway, key=MERCHANT_KEY)
    stranger = await sync_to_async(client.sale)(amount=order.amount, nonce="fake-valid-nonce", reference=str(order.pk))
    order, job = await attempt(order)
    assert job.status == "ok" and order.status == OrderStatus.PAID
    assert order.transaction_id != stranger.id
    assert len(await sync_to_async(money_for)(sandbox_gateway, order)) == 1


async def test_a_charge_of_ours_for_another_amount_needs_review(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user, amount="999.00")
    # Someone made a sale under this order's reference, for 0.01.
    client = GatewayClient(base_url=sandbox_gateway, key=MERCHANT_KEY)
    await sync_to_async(client.sale)(amount="0.01", nonce="fake-valid-nonce", reference=order.reference)
    order, job = await attempt(order)
    assert order.status == OrderStatus.REVIEW and job.status == "failed"
    assert "0.01" in order.error and "999.00" in order.error
    assert len(await sync_to_async(sales_of)(sandbox_gateway, order.reference)) == 1  # we sold nothing


async def test_two_charges_for_one_order_need_review(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user)
    client = GatewayClient(base_url=sandbox_gateway, key=MERCHANT_KEY)
    for _ in range(2):
        await sync_to_async(client.sale)(amount=order.amount, nonce="fake-valid-nonce", reference=order.reference,
                                         idempotency_key=f"by-hand-{_}")
    order, job = await attempt(order)
    assert order.status == OrderStatus.REVIEW and "2 charges" in order.error


async def test_the_sale_carries_an_idempotency_key_the_sandbox_honours(sandbox_gateway):
    client = GatewayClient(base_url=sandbox_gateway, key=MERCHANT_KEY)
    sale = sync_to_async(client.sale)
    first = await sale(amount="4.00", nonce="fake-valid-nonce", reference="idem-1", idempotency_key="idem-1:0")
    again = await sale(amount="4.00", nonce="fake-valid-nonce", reference="idem-1", idempotency_key="idem-1:0")
    assert again == first
    assert len(await sync_to_async(sales_of)(sandbox_gateway, "idem-1")) == 1


async def test_a_job_run_again_for_a_declined_order_never_reports_it_paid(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user, nonce="fake-processor-hard-declined-visa-nonce")
    order, job = await attempt(order)
    assert order.status == OrderStatus.DECLINED
    await Job.objects.filter(pk=job.pk).aupdate(status="retrying")  # a stray message, a requeue
    order, job = await attempt(order)
    assert order.status == OrderStatus.DECLINED and job.status == "failed"
    assert "already declined" in job.error
