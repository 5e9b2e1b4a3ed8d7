"""The gateway client against the sandbox gateway over real HTTP."""

from decimal import Decimal

import pytest

from integrations.exceptions import PermanentError, TransientError
from integrations.gateway import GatewayClient
from devtools.processes import free_port



@pytest.fixture
def client(sandbox_gateway):
    return GatewayClient(base_url=sandbox_gateway, timeout=(2, 5))


def test_sale_then_find_reports_submitted_for_settlement(client):
    sale = client.sale(amount=Decimal("12.50"), nonce="fake-valid-nonce", order_id="client-7")
    assert sale.status == "submitted_for_settlement" and sale.succeeded
    assert sale.amount == Decimal("12.50") and sale.order_id == "client-7"
    found = client.find(sale.id)
    assert found == sale


def test_declined_nonce_gives_a_declined_transaction_with_the_reason(client):
    sale = client.sale(amount=Decimal("3.00"), nonce="fake-processor-declined-visa-nonce", order_id="client-8")
    assert sale.status == "processor_declined"
    assert not sale.succeeded
    assert sale.decline_reason == "Do Not Honor"


def test_consumed_nonce_is_a_permanent_error_with_the_gateways_message(client):
    with pytest.raises(PermanentError, match="more than once"):
        client.sale(amount=Decimal("1.00"), nonce="fake-consumed-nonce", order_id="client-9")


def test_find_by_order_lists_every_sale_of_that_order(client):
    assert client.find_by_order("list-10") == []
    first = client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", order_id="list-10")
    second = client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", order_id="list-10")
    client.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", order_id="list-11")
    assert [t.id for t in client.find_by_order("list-10")] == [first.id, second.id]


def test_unknown_transaction_is_permanent(client):
    with pytest.raises(PermanentError, match="not found"):
        client.find("nope")


def test_gateway_503_is_transient(sandbox_server):
    failing = GatewayClient(base_url=sandbox_server(failure_rate=1.0), timeout=(2, 5))
    with pytest.raises(TransientError, match="503"):
        failing.find_by_order("client-1")
    with pytest.raises(TransientError, match="503"):
        failing.sale(amount=Decimal("1.00"), nonce="fake-valid-nonce", order_id="client-1")


def test_slow_gateway_times_out_as_transient(sandbox_server):
    slow = GatewayClient(base_url=sandbox_server(latency_ms=500), timeout=(1, 0.1))
    with pytest.raises(TransientError, match="unreachable: ReadTimeout"):
        slow.find_by_order("client-1")


def test_unreachable_gateway_is_transient():
    nobody = GatewayClient(base_url=f"http://127.0.0.1:{free_port()}/", timeout=(0.5, 0.5))
    with pytest.raises(TransientError, match="unreachable"):
        nobody.find("x")
