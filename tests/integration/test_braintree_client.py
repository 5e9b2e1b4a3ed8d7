"""The Braintree adapter: the real SDK, over real HTTP, against a fake Braintree XML API.

Nothing of the adapter or the SDK is mocked: only the SDK's Environment
points at ``tests/fake_braintree.py`` instead of Braintree's servers.
"""

from __future__ import annotations

import asyncio

from decimal import Decimal

import braintree
import pytest
from asgiref.sync import sync_to_async

import integrations.gateway
from integrations.braintree import BraintreeClient
from integrations.exceptions import PermanentError, TransientError
from integrations.gateway import Outcome, Transaction, get_payment_gateway
from integrations.gateway.exceptions import NonceConsumed
from jobs.models import Job
from orders.models import Order
from project.names import JOB_RUN, PAYMENTS
from tests.channels import deliver
from tests.factories import make_order
from tests.fake_braintree import MERCHANT_ID, PRIVATE_KEY, PUBLIC_KEY, FakeBraintree
from devtools.processes import free_port

pytestmark = pytest.mark.timeout(60)




def make_client(fake_braintree: FakeBraintree, *, private_key: str = PRIVATE_KEY, timeout=(2.0, 5.0)) -> BraintreeClient:
    return BraintreeClient(
        merchant_id=MERCHANT_ID,
        public_key=PUBLIC_KEY,
        private_key=private_key,
        environment=fake_braintree.environment,
        timeout=timeout,
    )


@pytest.fixture
def client(fake_braintree) -> BraintreeClient:
    return make_client(fake_braintree)


def test_sale_then_find_reports_submitted_for_settlement(client, fake_braintree):
    sale = client.sale(amount=Decimal("12.50"), nonce="fake-valid-nonce", reference="order-7")

    assert isinstance(sale, Transaction)
    assert sale.status == "submitted_for_settlement" and sale.outcome is Outcome.SETTLING
    assert sale.amount == Decimal("12.50") and sale.order_id == "order-7" and sale.currency == "USD"
    assert sale.processor_response_text == "Approved" and sale.processor_response_type == "approved"
    assert fake_braintree.requests == [("POST", f"/merchants/{MERCHANT_ID}/transactions")]
    # The sale was submitted for settlement (the fake would otherwise only authorize).
    assert fake_braintree.sales_for("order-7")[0]["status"] == "submitted_for_settlement"

    found = client.find(sale.id)
    assert found == sale
    assert fake_braintree.requests[-1] == ("GET", f"/merchants/{MERCHANT_ID}/transactions/{sale.id}")


def test_decline_gives_a_declined_transaction_with_the_processors_reason(client):
    sale = client.sale(amount=Decimal("3.00"), nonce="fake-processor-declined-visa-nonce", reference="order-8")

    assert sale.status == "processor_declined" and sale.outcome is Outcome.SOFT_DECLINE
    assert sale.decline_reason == "Do Not Honor (2000)"
    # As with the sandbox: the declined transaction exists, and find confirms it.
    assert client.find(sale.id) == sale


def test_a_spent_nonce_is_its_own_error_with_braintrees_message(client):
    with pytest.raises(NonceConsumed, match=r"more than once.*\(91564\)") as raised:
        client.sale(amount=Decimal("1.00"), nonce="fake-consumed-nonce", reference="order-9")
    assert raised.value.codes == {"91564"}


def test_an_authorized_sale_is_submitted_for_settlement(client, fake_braintree):
    sale = client.sale(amount=Decimal("2.00"), nonce="fake-valid-authorize-only-nonce", reference="order-16")
    assert sale.outcome is Outcome.AUTHORIZED
    settled = client.submit_for_settlement(sale.id)
    assert settled.id == sale.id and settled.status == "submitted_for_settlement"
    assert fake_braintree.requests[-1] == ("PUT", f"/merchants/{MERCHANT_ID}/transactions/{sale.id}/submit_for_settlement")


def test_a_repeated_sale_is_a_duplicate_naming_the_first(client):
    first = client.sale(amount=Decimal("2.00"), nonce="fake-valid-nonce", reference="order-17")
    again = client.sale(amount=Decimal("2.00"), nonce="fake-valid-nonce", reference="order-17")
    assert again.outcome is Outcome.DUPLICATE and again.duplicate_of == first.id


def test_find_by_reference_searches_by_order_id_oldest_first(client, fake_braintree):
    assert client.find_by_reference("order-10") == []
    first = client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="order-10")
    second = client.sale(amount=Decimal("1.00"), nonce="fake-processor-declined-visa-nonce", reference="order-10")
    client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="order-11")

    found = client.find_by_reference("order-10")

    # The fake_braintree, like Braintree, lists the newest first.
    assert found == [first, second]
    search = f"/merchants/{MERCHANT_ID}/transactions/advanced_search"
    assert fake_braintree.requests[-2:] == [("POST", search + "_ids"), ("POST", search)]


def test_unknown_transaction_is_permanent(client):
    with pytest.raises(PermanentError, match="NotFoundError"):
        client.find("nope")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_server_trouble_is_transient(client, fake_braintree, status):
    fake_braintree.forced = [status] * 3
    with pytest.raises(TransientError) as raised:
        client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="order-12")
    assert isinstance(raised.value.__cause__, braintree.exceptions.braintree_error.BraintreeError)
    with pytest.raises(TransientError):
        client.find("fk000001")
    with pytest.raises(TransientError):
        client.find_by_reference("order-12")
    assert fake_braintree.transactions == {}


def test_timeout_is_transient(fake_braintree):
    slow = make_client(fake_braintree, timeout=(2.0, 0.2))
    fake_braintree.delay = 0.5
    with pytest.raises(TransientError, match="ReadTimeoutError"):
        slow.find_by_reference("order-13")


def test_unreachable_braintree_is_transient():
    nobody = braintree.Environment("nobody", "127.0.0.1", str(free_port()), "", False, None)
    client = BraintreeClient(
        merchant_id=MERCHANT_ID, public_key=PUBLIC_KEY, private_key=PRIVATE_KEY, environment=nobody, timeout=(0.5, 0.5)
    )
    with pytest.raises(TransientError, match="ConnectionError"):
        client.find("x")


def test_wrong_keys_are_a_permanent_authentication_error(fake_braintree):
    wrong = make_client(fake_braintree, private_key="not-the-key")
    with pytest.raises(PermanentError, match="AuthenticationError") as raised:
        wrong.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="order-14")
    assert isinstance(raised.value.__cause__, braintree.exceptions.AuthenticationError)
    assert fake_braintree.transactions == {}


@pytest.mark.parametrize("status, error", [(403, "AuthorizationError"), (426, "UpgradeRequiredError"), (400, "400")])
def test_other_refusals_are_permanent(client, fake_braintree, status, error):
    fake_braintree.forced = [status]
    with pytest.raises(PermanentError, match=error):
        client.find_by_reference("order-15")


def test_settings_choose_braintree_with_bounded_timeouts(settings):
    settings.PAYMENT_GATEWAY = "braintree"
    settings.BRAINTREE_MERCHANT_ID, settings.BRAINTREE_PUBLIC_KEY, settings.BRAINTREE_PRIVATE_KEY = "m", "pub", "priv"
    settings.BRAINTREE_ENVIRONMENT = "production"
    settings.GATEWAY_CONNECT_TIMEOUT, settings.GATEWAY_READ_TIMEOUT = 3.0, 7.0

    gateway = get_payment_gateway()

    assert isinstance(gateway, BraintreeClient)
    config = gateway.gateway.config
    assert config.timeout == (3.0, 7.0)
    assert config.environment is braintree.Environment.Production
    assert (config.merchant_id, config.public_key, config.private_key) == ("m", "pub", "priv")
    assert get_payment_gateway() is gateway  # one client per process

    settings.PAYMENT_GATEWAY = "sandbox"
    assert isinstance(get_payment_gateway(), integrations.gateway.GatewayClient)


# --- the payment flow, with PAYMENT_GATEWAY=braintree --------------------------------




@pytest.mark.django_db(transaction=True)
async def test_payment_job_pays_through_braintree_and_never_charges_twice(channel_layer, braintree_gateway, user):
    order = await sync_to_async(make_order)(user)

    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})

    order = await Order.objects.aget(pk=order.pk)
    job = await Job.objects.aget(pk=order.job_id)
    assert job.status == "ok" and order.status == "paid"
    assert order.transaction_status == "submitted_for_settlement"
    assert [tx["id"] for tx in braintree_gateway.sales_for(order.reference)] == [order.transaction_id]

    # An attempt that died after the sale, before saving its id: the search finds it.
    await Order.objects.filter(pk=order.pk).aupdate(status="pending", transaction_id="", transaction_status="")
    await Job.objects.filter(pk=job.pk).aupdate(status="retrying")
    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})

    again = await Order.objects.aget(pk=order.pk)
    assert again.status == "paid" and again.transaction_id == order.transaction_id
    assert len(braintree_gateway.sales_for(order.reference)) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_sale_the_search_cannot_see_yet_is_adopted_through_braintrees_duplicate_check(
    channel_layer, braintree_gateway, user, settings
):
    settings.PAYMENT_LOST_SALE_WAIT = 0.5
    order = await sync_to_async(make_order)(user)
    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})
    order = await Order.objects.aget(pk=order.pk)
    first = order.transaction_id
    # The attempt died before saving the id, and Braintree's search index lags its ledger.
    braintree_gateway.unsearchable.add(first)
    await Order.objects.filter(pk=order.pk).aupdate(status="pending", transaction_id="", transaction_status="")
    await Job.objects.filter(pk=order.job_id).aupdate(status="retrying")
    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})
    # Within the wait, the sale we sent may still be on its way: no second sale.
    assert (await Job.objects.aget(pk=order.job_id)).status == "retrying"
    assert len(braintree_gateway.sales_for(order.reference)) == 1
    await asyncio.sleep(0.6)
    await Job.objects.filter(pk=order.job_id).aupdate(next_attempt_at=None)
    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})

    again = await Order.objects.aget(pk=order.pk)
    assert again.status == "paid" and again.transaction_id == first
    # The second sale was refused as a duplicate; no second charge.
    sales = braintree_gateway.sales_for(order.reference)
    assert [tx["status"] for tx in sales] == ["submitted_for_settlement", "gateway_rejected"]
    assert sales[1]["duplicate_of"] == first


@pytest.mark.django_db(transaction=True)
async def test_payment_declined_by_braintree_declines_the_order(channel_layer, braintree_gateway, user):
    order = await sync_to_async(make_order)(user, nonce="fake-processor-hard-declined-visa-nonce")

    await deliver(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})

    order = await Order.objects.aget(pk=order.pk)
    job = await Job.objects.aget(pk=order.job_id)
    assert job.status == "failed" and job.error == "Expired Card (2004)"
    assert order.status == "declined" and order.transaction_status == "processor_declined"
