"""The gateway client against the sandbox gateway over real HTTP."""

from decimal import Decimal

import pytest
import requests

from devtools.processes import free_port
from devtools.stack import MERCHANT_KEY
from integrations.exceptions import PermanentError, TransientError
from integrations.gateway import GatewayClient, Outcome
from integrations.gateway.exceptions import GatewayValidationError, NonceConsumed


@pytest.fixture
def client(sandbox_gateway):
    return GatewayClient(base_url=sandbox_gateway, key=MERCHANT_KEY, timeout=(2, 5))


def test_sale_then_find_reports_submitted_for_settlement(client):
    sale = client.sale(amount=Decimal("12.50"), nonce="fake-valid-nonce", reference="client-7")
    assert sale.status == "submitted_for_settlement" and sale.outcome is Outcome.SETTLING
    assert sale.amount == Decimal("12.50") and sale.order_id == "client-7" and sale.currency == "USD"
    found = client.find(sale.id)
    assert found == sale


def test_declined_nonce_gives_a_declined_transaction_with_the_reason(client):
    sale = client.sale(amount=Decimal("3.00"), nonce="fake-processor-declined-visa-nonce", reference="client-8")
    assert sale.status == "processor_declined" and sale.outcome is Outcome.SOFT_DECLINE
    assert sale.decline_reason == "Do Not Honor (2000)"


def test_consumed_nonce_is_its_own_error_with_the_gateways_code(client):
    with pytest.raises(NonceConsumed, match="more than once") as raised:
        client.sale(amount=Decimal("1.00"), nonce="fake-consumed-nonce", reference="client-9")
    assert raised.value.codes == {"91564"}


def test_an_invalid_amount_is_a_validation_error_with_its_code(client):
    with pytest.raises(GatewayValidationError) as raised:
        client.sale(amount="lots", nonce="fake-valid-nonce", reference="client-9b")
    assert raised.value.codes == {"81503"}


def test_find_by_reference_lists_every_sale_of_that_order(client):
    assert client.find_by_reference("list-10") == []
    first = client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="list-10", idempotency_key="a")
    second = client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="list-10", idempotency_key="b")
    client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="list-11")
    assert [t.id for t in client.find_by_reference("list-10")] == [first.id, second.id]


def test_without_an_idempotency_key_a_repeat_is_refused_as_a_duplicate(client):
    first = client.sale(amount=Decimal("6.00"), nonce="fake-valid-nonce", reference="dup-1")
    again = client.sale(amount=Decimal("6.00"), nonce="fake-valid-nonce", reference="dup-1")
    assert again.outcome is Outcome.DUPLICATE and again.duplicate_of == first.id


def test_an_idempotency_key_used_for_another_sale_is_refused(client):
    client.sale(amount=Decimal("6.00"), nonce="fake-valid-nonce", reference="key-1", idempotency_key="k")
    with pytest.raises(GatewayValidationError, match="another sale"):
        client.sale(amount=Decimal("6.00"), nonce="fake-valid-nonce", reference="key-2", idempotency_key="k")


def test_unknown_transaction_is_permanent(client):
    with pytest.raises(PermanentError, match="not found"):
        client.find("nope")


def test_the_sandbox_refuses_anyone_without_the_merchant_key(sandbox_gateway):
    # Neither the ledger nor a sale: nobody outside the product can read or pay our orders.
    for headers in ({}, {"Authorization": "Bearer not-the-key"}, {"Authorization": f"Basic {MERCHANT_KEY}"}):
        listed = requests.get(sandbox_gateway + "transactions/", headers=headers, timeout=5)
        made = requests.post(sandbox_gateway + "transactions/", headers=headers, timeout=5,
                             json={"amount": "0.01", "payment_method_nonce": "fake-valid-nonce", "order_id": "x"})
        assert (listed.status_code, made.status_code) == (401, 401)
    wrong = GatewayClient(base_url=sandbox_gateway, key="not-the-key", timeout=(2, 5))
    with pytest.raises(PermanentError, match="Authentication failed"):
        wrong.find_by_reference("x")


def test_gateway_503_is_transient(sandbox_server):
    failing = GatewayClient(base_url=sandbox_server(failure_rate=1.0), key=MERCHANT_KEY, timeout=(2, 5))
    with pytest.raises(TransientError, match="503"):
        failing.find_by_reference("client-1")
    with pytest.raises(TransientError, match="503"):
        failing.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", reference="client-1")


def test_slow_gateway_times_out_as_transient(sandbox_server):
    slow = GatewayClient(base_url=sandbox_server(latency_ms=500), key=MERCHANT_KEY, timeout=(1, 0.1))
    with pytest.raises(TransientError, match="unreachable: ReadTimeout"):
        slow.find_by_reference("client-1")


def test_unreachable_gateway_is_transient():
    nobody = GatewayClient(base_url=f"http://127.0.0.1:{free_port()}/", key=MERCHANT_KEY, timeout=(0.5, 0.5))
    with pytest.raises(TransientError, match="unreachable"):
        nobody.find("x")
