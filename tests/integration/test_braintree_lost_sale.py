"""A sale whose answer was lost, at a gateway with no idempotency key (Braintree).

The sale may still land after our timeout.  Until ``PAYMENT_LOST_SALE_WAIT``
has passed, the payment only searches for it and never sells again; after
that, a sale that never showed up is made anew.  Against the fake Braintree
XML API, through the real SDK.
"""

from __future__ import annotations

import time

import pytest

from integrations.braintree import BraintreeClient
from integrations.exceptions import TransientError
from jobs.models import Job
from orders.exceptions import SaleInDoubt
from orders.models import OrderStatus
from orders.services import payment_process
from tests.factories import make_order
from tests.fake_braintree import MERCHANT_ID, PRIVATE_KEY, PUBLIC_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60), pytest.mark.engine]


@pytest.fixture
def braintree_gateway(fake_braintree) -> BraintreeClient:
    # A read timeout well under the sale's trip to the gateway; a merchant
    # with duplicate checking off, so nothing but our own care stops a second sale.
    fake_braintree.duplicate_window = 0
    return BraintreeClient(merchant_id=MERCHANT_ID, public_key=PUBLIC_KEY, private_key=PRIVATE_KEY,
                           environment=fake_braintree.environment, timeout=(2.0, 0.3))


def test_a_sale_that_lands_after_our_timeout_is_found_not_sold_again(braintree_gateway, fake_braintree, settings, user):
    settings.PAYMENT_LOST_SALE_WAIT = 30
    order = make_order(user)
    job = Job.objects.get(pk=order.job_id)
    fake_braintree.sale_delay = 1.0
    with pytest.raises(TransientError):
        payment_process(job=job, gateway=braintree_gateway)  # the answer is lost; the sale is on its way
    fake_braintree.sale_delay = 0
    with pytest.raises(SaleInDoubt) as waiting:
        payment_process(job=job, gateway=braintree_gateway)  # a retry: nothing found yet, and no new sale
    assert 0 < waiting.value.retry_after <= 30
    # The first sale lands a moment later; the next attempt finds it.
    deadline = time.monotonic() + 10
    while not fake_braintree.sales_for(order.reference) and time.monotonic() < deadline:
        time.sleep(0.05)
    paid = payment_process(job=job, gateway=braintree_gateway)
    assert paid.status == OrderStatus.PAID
    assert [tx["id"] for tx in fake_braintree.sales_for(order.reference)] == [paid.transaction_id]
    assert paid.sales_sent == 1


def test_a_sale_that_never_showed_up_is_made_again_once_the_wait_is_over(braintree_gateway, fake_braintree,
                                                                          settings, user):
    settings.PAYMENT_LOST_SALE_WAIT = 0.5
    order = make_order(user)
    job = Job.objects.get(pk=order.job_id)
    fake_braintree.lost_sales = 1  # lost on the way: the gateway never made it
    with pytest.raises(TransientError):
        payment_process(job=job, gateway=braintree_gateway)
    with pytest.raises(SaleInDoubt):
        payment_process(job=job, gateway=braintree_gateway)
    time.sleep(0.6)
    paid = payment_process(job=job, gateway=braintree_gateway)
    assert paid.status == OrderStatus.PAID
    assert len(fake_braintree.sales_for(order.reference)) == 1
    assert paid.sales_sent == 2
