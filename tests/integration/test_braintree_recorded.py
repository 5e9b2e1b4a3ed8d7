"""Real Braintree answers, recorded from public sources, through the real SDK and our adapter.

Each body in ``tests/fixtures/braintree/`` was recorded from Braintree's
sandbox by another project (``PROVENANCE.md`` says which); the fake server
only replays it over HTTP, so the SDK parses it as it would Braintree's.
What matters is what the product makes of it: an order is paid only when the
money is the order's, in full.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from integrations.braintree import BraintreeClient
from integrations.gateway import Outcome
from integrations.gateway.exceptions import GatewayValidationError, NonceConsumed
from jobs.models import Job
from orders.models import Order, OrderStatus
from project.names import JOB_RUN, PAYMENTS
from tests.channels import deliver
from tests.factories import make_order
from tests.fake_braintree import MERCHANT_ID, PRIVATE_KEY, PUBLIC_KEY

pytestmark = pytest.mark.timeout(60)

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "braintree"
# The shape of the recorded search_results_ids.xml with no ids: a search that found nothing.
NOTHING_FOUND = '<search-results><page-size type="integer">50</page-size><ids type="array"/></search-results>'


def recorded(name: str) -> str:
    """A recorded body, without its XML declaration (the fake server writes its own)."""
    return re.sub(r"^<\?xml[^>]*\?>\s*", "", (RECORDED / name).read_text())




@pytest.fixture
def client(fake_braintree) -> BraintreeClient:
    return BraintreeClient(merchant_id=MERCHANT_ID, public_key=PUBLIC_KEY, private_key=PRIVATE_KEY,
                           environment=fake_braintree.environment, timeout=(2.0, 5.0))


# --- the adapter reads every recorded shape ----------------------------------------------


@pytest.mark.parametrize(
    "name, status, outcome, amount, currency, order_id, code",
    [
        ("transaction_authorized.xml", "authorized", Outcome.AUTHORIZED, "80.00", "EUR", "1", "1000"),
        ("transaction_submit_for_settlement.xml", "submitted_for_settlement", Outcome.SETTLING, None, None, "2",
         "1000"),
        ("transaction_sale_submitted_for_settlement.xml", "submitted_for_settlement", Outcome.SETTLING, None, None,
         None, "1000"),
        ("transaction_settled.xml", "settled", Outcome.SETTLING, None, None, None, "1000"),
        ("transaction_find_settled.xml", "settled", Outcome.SETTLING, None, None, None, "1000"),
    ],
)
def test_recorded_transactions_are_read_field_by_field(client, fake_braintree, name, status, outcome, amount, currency,
                                                       order_id, code):
    fake_braintree.replies = [(200, recorded(name))]
    tx = client.find("any")
    assert tx.status == status and tx.outcome is outcome
    assert tx.processor_response_code == code
    if amount is not None:
        assert tx.amount == Decimal(amount) and tx.currency == currency
    if order_id is not None:
        assert tx.order_id == order_id


def test_a_recorded_soft_decline_is_a_transaction_to_classify_not_an_error(client, fake_braintree):
    # 2001 Insufficient Funds, recorded in 2015: no processor-response-type yet.
    fake_braintree.replies = [(422, recorded("api_error_processor_declined_2001.xml"))]
    tx = client.sale(amount=Decimal("2001.00"), nonce="fake-valid-nonce", reference="r")
    assert tx.status == "processor_declined" and tx.processor_response_type == ""
    assert tx.outcome is Outcome.SOFT_DECLINE
    assert tx.decline_reason == "Insufficient Funds (2001)"


def test_a_recorded_gateway_rejection_is_a_rejection(client, fake_braintree):
    fake_braintree.replies = [(422, recorded("api_error_gateway_rejected_application_incomplete.xml"))]
    tx = client.sale(amount=Decimal("5001.00"), nonce="fake-valid-nonce", reference="r")
    assert tx.outcome is Outcome.REJECTED and tx.decline_reason == "Gateway rejected: application_incomplete"


def test_a_recorded_settlement_decline_is_money_that_went_away(client, fake_braintree):
    fake_braintree.replies = [(422, recorded("api_error_settlement_declined_4001.xml"))]
    tx = client.sale(amount=Decimal("4001.00"), nonce="fake-valid-nonce", reference="r")
    assert tx.status == "settlement_declined" and tx.outcome is Outcome.REVERSED and not tx.holds_money


@pytest.mark.parametrize(
    "name, error, codes",
    [
        ("api_error_91565_unknown_nonce.xml", GatewayValidationError, {"91565"}),
        ("api_error_81501_91565_amount_and_nonce.xml", GatewayValidationError, {"81501", "91565"}),
        # Recorded on customer create; a sale says 91564 for the same thing.
        ("api_error_93107_consumed_nonce_customer.xml", NonceConsumed, {"93107"}),
    ],
)
def test_recorded_validation_errors_keep_their_codes(client, fake_braintree, name, error, codes):
    fake_braintree.replies = [(422, recorded(name))]
    with pytest.raises(error) as raised:
        client.sale(amount=Decimal("1.00"), nonce="whatever", reference="r")
    assert codes <= raised.value.codes
    if error is GatewayValidationError:
        assert not isinstance(raised.value, NonceConsumed)


def test_a_recorded_search_reads_every_transaction_it_lists(client, fake_braintree):
    fake_braintree.replies = [(200, recorded("search_results_ids.xml")),
                    (200, recorded("credit_card_transactions_advanced_search.xml"))]
    [found] = client.find_by_reference("whatever")
    assert found.id == "transactionid" and found.status == "authorized" and found.order_id == ""


# --- and the payment flow never takes them for this order's money ------------------------




async def pay(order: Order) -> tuple[Order, Job]:
    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})
    return await Order.objects.aget(pk=order.pk), await Job.objects.aget(pk=order.job_id)


@pytest.mark.django_db(transaction=True)
async def test_an_authorized_sale_of_another_amount_is_never_paid(channel_layer, braintree_gateway, user):
    # The recorded sale holds 80.00 EUR under order id "1"; the order is 10.00 EUR under that reference.
    order = await sync_to_async(make_order)(user, amount="10.00")
    await Order.objects.filter(pk=order.pk).aupdate(reference="1", currency="EUR")
    braintree_gateway.replies = [(200, NOTHING_FOUND), (201, recorded("transaction_authorized.xml")),
                                 (200, recorded("transaction_authorized.xml"))]
    order, job = await pay(order)
    assert order.status == OrderStatus.REVIEW and job.status == "failed"
    assert "80.00" in order.error and "10.00" in order.error
    assert order.transaction_id == "6t9q4e7p"
    # Never captured: nothing was submitted for settlement.
    assert not [r for r in braintree_gateway.requests if r[0] == "PUT"]


@pytest.mark.django_db(transaction=True)
async def test_an_authorized_sale_in_another_currency_is_never_paid(channel_layer, braintree_gateway, user):
    order = await sync_to_async(make_order)(user, amount="80.00")
    await Order.objects.filter(pk=order.pk).aupdate(reference="1")  # currency USD: the recording is EUR
    braintree_gateway.replies = [(200, NOTHING_FOUND), (201, recorded("transaction_authorized.xml")),
                                 (200, recorded("transaction_authorized.xml"))]
    order, _ = await pay(order)
    assert order.status == OrderStatus.REVIEW and "EUR" in order.error


@pytest.mark.django_db(transaction=True)
async def test_old_sales_found_by_search_are_not_this_orders(channel_layer, braintree_gateway, user):
    # A search that answers with someone else's authorized sale (the recording has no order id).
    order = await sync_to_async(make_order)(user)
    braintree_gateway.replies = [(200, recorded("search_results_ids.xml")),
                                 (200, recorded("credit_card_transactions_advanced_search.xml"))]
    order, job = await pay(order)
    assert order.status == OrderStatus.PAID and job.status == "ok"
    [sale] = braintree_gateway.sales_for(order.reference)
    assert order.transaction_id == sale["id"] != "transactionid"
