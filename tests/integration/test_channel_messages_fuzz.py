"""Background consumers survive any channel message (generated with Hypothesis)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.models import Job
from orders.models import Order
from project.names import EMAILS, JOB_RUN, PAYMENTS
from tests.channels import deliver
from tests.factories import make_order, receipt_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
job_ids = st.one_of(st.integers(min_value=-5, max_value=10**20), st.text(max_size=10), st.none(), st.floats(),
                    st.lists(st.integers(), max_size=2), st.booleans())
messages = st.one_of(
    # job.run with a wrong, missing or foreign job
    st.fixed_dictionaries({"type": st.just(JOB_RUN)}, optional={"job": job_ids, "extra": json_values}),
    # unknown types, including names of the consumer's own methods
    st.fixed_dictionaries(
        {"type": st.sampled_from(["run", "handle", "on_failure", "dispatch", "job.update", "__call__", ".x", ""])
         | st.text(max_size=15)},
        optional={"job": job_ids},
    ),
    # no type at all, or not even a dict's worth of sense
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)


async def _drive(channel: str, batch: list[dict], real_job_id: int) -> None:
    # Junk first; then the same consumer instance must still do real work.
    await deliver(channel, *batch, {"type": JOB_RUN, "job": real_job_id})
    assert (await Job.objects.aget(pk=real_job_id)).status in ("ok", "failed")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(messages, min_size=1, max_size=6))
def test_payments_consumer_survives_any_message(batch, channel_layer, sandbox_gateway, user):
    order = make_order(user)
    async_to_sync(_drive)(PAYMENTS, batch, order.job_id)
    assert Order.objects.get(pk=order.pk).status == "paid"


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(messages, min_size=1, max_size=6))
def test_emails_consumer_survives_any_message(batch, channel_layer, sandbox_gateway, user):
    order = make_order(user)
    receipt = receipt_job(order)
    async_to_sync(_drive)(EMAILS, batch, receipt.pk)
    assert Job.objects.get(pk=receipt.pk).status == "ok"


def test_a_job_on_the_wrong_channel_fails_clearly(channel_layer, sandbox_gateway, user):
    order = make_order(user)
    receipt = receipt_job(order)
    async_to_sync(_drive)(PAYMENTS, [], receipt.pk)
    receipt.refresh_from_db()
    assert receipt.status == "failed"
    assert receipt.error == "payment consumer cannot run a 'orders.tasks.send_receipt' job"


def test_a_job_whose_subject_is_gone_fails_clearly(channel_layer, sandbox_gateway, user):
    job = Job.objects.create(kind="payment", channel=PAYMENTS, user=user, subject_type="orders.order",
                             subject_id="987654")
    async_to_sync(_drive)(PAYMENTS, [], job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "orders.order 987654 does not exist"
