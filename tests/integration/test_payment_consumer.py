"""The payments consumer, driven through the ASGI channel protocol."""

from __future__ import annotations

import asyncio

import pytest
from django.utils import timezone
from asgiref.sync import sync_to_async
from django.db import OperationalError

from consumers.payments import PaymentConsumer
from jobs.models import Job
from orders.models import Order
from orders.tasks import send_receipt
from project.names import JOB_RUN, JOB_UPDATE, PAYMENTS, user_group
from integrations.gateway import GatewayClient
from tests.channels import deliver, drain
from devtools.stack import MERCHANT_KEY
from tests.conftest import sales_of
from tests.factories import make_order
from tests.transactions import watching

RECEIPT = send_receipt.module_path

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60), pytest.mark.engine]


async def run_job(job_id: int, *, times: int = 1) -> Job:
    await deliver(PAYMENTS, *[{"type": JOB_RUN, "job": job_id}] * times)
    return await Job.objects.aget(pk=job_id)


async def test_a_quick_payment_pushes_its_final_state_and_nothing_the_user_would_only_see_flash(
    channel_layer, events_layer, sandbox_gateway, user, serving_loop
):
    order = await sync_to_async(make_order)(user)
    listener = await events_layer.new_channel()
    await events_layer.group_add(user_group(user.pk), listener)

    job = await run_job(order.job_id)

    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "ok" and job.progress == 100 and job.attempts == 1
    assert order.status == "paid" and order.transaction_status == "submitted_for_settlement"
    assert len(await sync_to_async(sales_of)(sandbox_gateway, order.reference)) == 1
    events = await drain(events_layer, listener)
    assert all(e["type"] == JOB_UPDATE for e in events)
    # Done well within JOBS_EVENT_HOLD: its "running" states were held back
    # and replaced by its end.  The receipt it queued is not announced: the
    # user hears of it when it is sent.
    assert [(e["job"]["id"], e["job"]["status"]) for e in events] == [(job.pk, "ok")]
    assert events[0]["message"] == f"Payment of 12.50 paid (transaction {order.transaction_id})"
    receipt = await Job.objects.aget(kind=RECEIPT, subject_id=str(order.pk))
    assert receipt.status == "pending" and receipt.channel == "emails"


async def test_a_slow_payment_shows_it_runs_with_progress_then_ends(channel_layer, events_layer, sandbox, user, settings,
                                                                    serving_loop):
    # Each gateway call takes 0.3 s, far past a 0.05 s hold; updates come at
    # most every 10 s, so the run shows once, with its newest progress.
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url(latency_ms=300)
    settings.JOBS_EVENT_HOLD = 0.05
    settings.JOBS_EVENT_INTERVAL = 10
    order = await sync_to_async(make_order)(user)
    listener = await events_layer.new_channel()
    await events_layer.group_add(user_group(user.pk), listener)

    job = await run_job(order.job_id)

    assert job.status == "ok"
    events = await drain(events_layer, listener)
    assert [e["job"]["status"] for e in events] == ["running", "ok"]
    running, done = events
    assert 0 < running["job"]["progress"] < 100 and running["message"]
    assert done["job"]["progress"] == 100


async def test_a_hard_decline_declines_the_order_at_once(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user, nonce="fake-processor-hard-declined-visa-nonce")
    job = await run_job(order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "failed" and job.attempts == 1 and job.error == "Expired Card (2004)"
    assert order.status == "declined" and order.error == "Expired Card (2004)"
    assert order.processor_response_code == "2004"


async def test_a_soft_decline_is_declined_once_its_attempts_are_spent(channel_layer, sandbox_gateway, user, settings):
    settings.PAYMENT_DECLINE_ATTEMPTS = 1
    order = await sync_to_async(make_order)(user, nonce="fake-processor-declined-visa-nonce")
    job = await run_job(order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "failed" and job.error == "Do Not Honor (2000)"
    assert order.status == "declined" and order.error == "Do Not Honor (2000)"


async def test_a_spent_nonce_with_no_charge_of_ours_needs_review(channel_layer, sandbox_gateway, user, settings):
    # Our own charge may not be searchable yet: a person looks, the customer is not told to pay again.
    settings.PAYMENT_DECLINE_ATTEMPTS = 1
    order = await sync_to_async(make_order)(user, nonce="fake-consumed-nonce")
    job = await run_job(order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "failed" and job.attempts == 1
    assert "already used" in job.error
    assert order.status == "review" and "already used" in order.error


async def test_a_repeated_message_never_charges_twice(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user)
    await run_job(order.job_id)
    job = await run_job(order.job_id, times=3)
    assert job.status == "ok" and job.attempts == 1
    assert len(await sync_to_async(sales_of)(sandbox_gateway, order.reference)) == 1


async def test_a_sale_made_by_a_dead_attempt_is_found_not_repeated(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user)
    # An earlier attempt charged the card and died before saving the id.
    earlier = await sync_to_async(GatewayClient(base_url=sandbox_gateway, key=MERCHANT_KEY).sale)(
        amount=order.amount, nonce=order.nonce, reference=order.reference
    )
    job = await run_job(order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "ok"
    assert order.transaction_id == earlier.id
    assert len(await sync_to_async(sales_of)(sandbox_gateway, order.reference)) == 1


async def test_gateway_outage_schedules_a_durable_retry(channel_layer, sandbox_server, user, settings):
    settings.PAYMENT_GATEWAY_URL = sandbox_server(failure_rate=1.0)
    settings.JOBS_RETRY_BASE_DELAY = 30  # far enough that the in-process retry cannot fire here
    order = await sync_to_async(make_order)(user)
    job = await run_job(order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "retrying"
    assert job.next_attempt_at is not None and job.next_attempt_at > job.last_attempt_at
    assert "503" in job.error
    assert order.status == "processing" and "retrying" in order.error
    assert await sync_to_async(sales_of)(sandbox_server(), order.reference) == []


async def test_exhausted_retries_fail_the_job_with_the_last_error(channel_layer, sandbox_server, user, settings):
    settings.PAYMENT_GATEWAY_URL = sandbox_server(failure_rate=1.0)
    settings.PAYMENT_MAX_ATTEMPTS = 2
    settings.JOBS_RETRY_BASE_DELAY = 0.05
    settings.JOBS_RETRY_MAX_DELAY = 0.05
    order = await sync_to_async(make_order)(user)
    initial = await channel_layer.receive(PAYMENTS)  # sent by order_create after commit
    assert initial == {"type": JOB_RUN, "job": order.job_id}
    job = await run_job(order.job_id)
    assert job.status == "retrying"
    # The consumer re-sends the job to its channel when the retry is due.
    async with asyncio.timeout(5):
        retry = await channel_layer.receive(PAYMENTS)
    assert retry == {"type": JOB_RUN, "job": order.job_id}
    job = await run_job(order.job_id)
    order = await Order.objects.aget(pk=order.pk)
    assert job.status == "failed" and job.attempts == 2
    assert "503" in job.error
    assert order.status == "failed"


async def test_garbage_messages_are_dropped_and_the_consumer_goes_on(channel_layer, sandbox_gateway, user):
    order = await sync_to_async(make_order)(user)
    junk = ({"type": JOB_RUN}, {"type": JOB_RUN, "job": "1; drop table"}, {"type": JOB_RUN, "job": 99999})
    await deliver(PAYMENTS, *junk, {"type": JOB_RUN, "job": order.job_id})
    job = await Job.objects.aget(pk=order.job_id)
    assert job.status == "ok"


# --- what is written together -----------------------------------------------------------


def pay(job_id: int) -> None:
    """Run the payment consumer on this thread, so its statements can be watched."""
    consumer = PaymentConsumer()
    consumer.scope = {"type": "channel", "channel": PAYMENTS}
    consumer.run({"type": JOB_RUN, "job": job_id})


def test_a_payment_writes_its_start_with_the_claim_and_its_end_in_one_transaction(channel_layer, sandbox_gateway,
                                                                                  user):
    order = make_order(user)
    with watching() as seen:
        pay(order.job_id)
    job = Job.objects.get(pk=order.job_id)
    assert job.status == "ok" and Order.objects.get(pk=order.pk).status == "paid"
    # Claimed, the order processing and the job's first progress: one commit.
    start = seen.group_of('"attempts" = (', 'UPDATE "orders_order" SET "status"')
    assert len(start) == 4 and '"progress"' in start[3]  # the claim, reading the order, and the two writes
    # The order paid, the job ok and the receipt job: one commit, together or not at all.
    end = seen.group_of('INSERT INTO "jobs_job"')
    assert len(end) == 3
    assert end[0].startswith('UPDATE "orders_order" SET "status"')
    assert end[1].startswith('UPDATE "jobs_job" SET "status"')
    # Between them only the sale's id, saved before it is confirmed.
    assert len(seen.groups) == 3


@pytest.fixture
def receipt_fails(monkeypatch):
    """Make queueing the receipt raise ``errors`` in turn, then work."""
    import consumers.payments

    errors: list[BaseException] = []
    real = consumers.payments.receipt_request

    def request(*, order):
        if errors:
            raise errors.pop(0)
        return real(order=order)

    monkeypatch.setattr(consumers.payments, "receipt_request", request)
    return errors


def test_a_database_error_in_the_last_transaction_leaves_nothing_paid_and_the_retry_pays_once(
        channel_layer, sandbox_gateway, user, settings, receipt_fails):
    settings.JOBS_RETRY_BASE_DELAY = 30
    receipt_fails.append(OperationalError("server closed the connection unexpectedly"))
    order = make_order(user)
    pay(order.job_id)
    job = Job.objects.get(pk=order.job_id)
    assert job.status == "retrying"
    assert Order.objects.get(pk=order.pk).status == "processing"
    assert not Job.objects.filter(kind=RECEIPT).exists()
    # The retry comes due (a message before then finds the job not claimable).
    Job.objects.filter(pk=order.job_id).update(next_attempt_at=timezone.now())
    pay(order.job_id)
    job = Job.objects.get(pk=order.job_id)
    order = Order.objects.get(pk=order.pk)
    assert (job.status, job.attempts, order.status) == ("ok", 2, "paid")
    assert Job.objects.filter(kind=RECEIPT).count() == 1
    assert len(sales_of(sandbox_gateway, order.reference)) == 1


def test_a_crash_after_the_money_is_taken_never_turns_the_order_failed(channel_layer, sandbox_gateway, user,
                                                                       receipt_fails):
    receipt_fails.append(RuntimeError("a bug in queueing the receipt"))
    order = make_order(user)
    pay(order.job_id)
    job = Job.objects.get(pk=order.job_id)
    order = Order.objects.get(pk=order.pk)
    assert job.status == "failed" and "RuntimeError" in job.error
    assert order.status == "paid" and order.transaction_id
    assert not Job.objects.filter(kind=RECEIPT).exists()
