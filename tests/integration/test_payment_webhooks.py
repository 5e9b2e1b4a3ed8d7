"""After the sale: settlement and disputes arrive as signed webhooks, change the order and reach the user.

Braintree's webhooks are built by its own SDK (``webhook_testing``), signed
with our keys, and verified by the SDK on the way in; the sandbox's are JSON
signed with the merchant key, as the sandbox gateway sends them.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import braintree
import pytest
from asgiref.sync import async_to_sync

import integrations.gateway
from devtools.stack import MERCHANT_KEY
from integrations.gateway.client import SIGNATURE_HEADER, sign
from orders.models import Order, OrderStatus, PaymentEvent
from project.names import ORDER_UPDATE, user_group
from tests.channels import received
from tests.factories import make_order

pytestmark = pytest.mark.django_db(transaction=True)


def paid_order(user, transaction_id: str = "tx-paid-1") -> Order:
    order = make_order(user)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, transaction_id=transaction_id,
                                             transaction_status="submitted_for_settlement")
    return Order.objects.get(pk=order.pk)


def sandbox_body(order: Order, kind: str, **changes) -> bytes:
    transaction = {"id": order.transaction_id, "status": "settlement_declined", "amount": str(order.amount),
                   "currency_iso_code": "USD", "order_id": order.reference, "processor_response_code": "4001",
                   "processor_response_text": "Settlement Declined"} | changes
    return json.dumps({"kind": kind, "transaction": transaction, "dispute_status": ""}).encode()


def order_events(events_layer, listener) -> list[dict]:
    return [e for e in received(events_layer, listener) if e["type"] == ORDER_UPDATE]


def post_sandbox(client, body: bytes, signature: str | None = None):
    return client.post("/webhooks/sandbox/", data=body, content_type="application/json",
                       headers={SIGNATURE_HEADER: signature if signature is not None else sign(MERCHANT_KEY, body)})


@pytest.fixture
def listener(events_layer, user):
    channel = async_to_sync(events_layer.new_channel)()
    async_to_sync(events_layer.group_add)(user_group(user.pk), channel)
    return channel


def test_a_declined_settlement_unpays_the_order_and_tells_its_user(client, user, events_layer, listener):
    order = paid_order(user)
    response = post_sandbox(client, sandbox_body(order, "transaction_settlement_declined"))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.SETTLEMENT_DECLINED
    assert "Settlement Declined (4001)" in order.error
    [event] = PaymentEvent.objects.all()
    assert (event.source, event.kind, event.order_id) == ("sandbox", "transaction_settlement_declined", order.pk)
    [pushed] = order_events(events_layer, listener)
    assert pushed["order"]["status"] == "settlement_declined" and pushed["order"]["id"] == order.pk
    assert "was not settled" in pushed["message"]
    # Delivered again, it changes nothing more.
    assert post_sandbox(client, sandbox_body(order, "transaction_settlement_declined")).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.SETTLEMENT_DECLINED and PaymentEvent.objects.count() == 2


def test_a_forged_webhook_is_refused_and_changes_nothing(client, user, events_layer, listener):
    order = paid_order(user)
    body = sandbox_body(order, "transaction_settlement_declined")
    for signature in ("", "sha256=" + "0" * 64, sign("not-the-merchant-key", body)):
        response = post_sandbox(client, body, signature)
        assert response.status_code == 400 and response.json()["code"] == "invalid_webhook"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and not PaymentEvent.objects.exists()
    assert order_events(events_layer, listener) == []


def test_a_webhook_for_another_reference_changes_nothing(client, user):
    order = paid_order(user)
    response = post_sandbox(client, sandbox_body(order, "transaction_settlement_declined", order_id="order-else"))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert PaymentEvent.objects.get().outcome.startswith("No order has transaction")


def test_a_webhook_nobody_expects_is_recorded_and_acknowledged(client, user):
    body = json.dumps({"kind": "transaction_settled", "transaction": {"id": "unknown", "status": "settled",
                                                                       "amount": "1.00"}}).encode()
    assert post_sandbox(client, body).status_code == 200
    assert PaymentEvent.objects.get().outcome.startswith("No order has transaction unknown")


def post_braintree(client, sample: dict):
    """POST a notification as Braintree does: a form with bt_signature and bt_payload."""
    form = urlencode({key: value.decode() if isinstance(value, bytes) else value for key, value in sample.items()})
    return client.post("/webhooks/braintree/", data=form, content_type="application/x-www-form-urlencoded")


@pytest.fixture
def braintree_keys(settings):
    settings.PAYMENT_GATEWAY = "braintree"
    settings.BRAINTREE_MERCHANT_ID, settings.BRAINTREE_PUBLIC_KEY = "merchant", "public-key"
    settings.BRAINTREE_PRIVATE_KEY = "private-key"
    integrations.gateway._braintree.cache_clear()
    yield braintree.BraintreeGateway(braintree.Configuration(
        environment=braintree.Environment.Sandbox, merchant_id="merchant", public_key="public-key",
        private_key="private-key"))
    integrations.gateway._braintree.cache_clear()


@pytest.mark.parametrize(
    "kind, status, dispute",
    [
        (braintree.WebhookNotification.Kind.TransactionSettlementDeclined, OrderStatus.SETTLEMENT_DECLINED, ""),
        (braintree.WebhookNotification.Kind.TransactionSettled, OrderStatus.PAID, ""),
        (braintree.WebhookNotification.Kind.DisputeOpened, OrderStatus.PAID, "open"),
        (braintree.WebhookNotification.Kind.DisputeLost, OrderStatus.PAID, "lost"),
    ],
)
def test_braintree_webhooks_verified_by_its_sdk(client, user, braintree_keys, kind, status, dispute):
    order = paid_order(user, transaction_id="my_transaction_id")
    # The SDK's own sample notification, signed with our keys, as Braintree would send it.
    sample = braintree_keys.webhook_testing.sample_notification(kind, "my_transaction_id")
    response = post_braintree(client, sample)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == status and order.dispute == dispute
    assert PaymentEvent.objects.get().kind == kind


def test_a_braintree_webhook_signed_with_other_keys_is_refused(client, user, braintree_keys):
    order = paid_order(user, transaction_id="my_transaction_id")
    other = braintree.BraintreeGateway(braintree.Configuration(
        environment=braintree.Environment.Sandbox, merchant_id="merchant", public_key="public-key",
        private_key="someone-elses-private-key"))
    sample = other.webhook_testing.sample_notification(
        braintree.WebhookNotification.Kind.TransactionSettlementDeclined, "my_transaction_id")
    response = post_braintree(client, sample)
    assert response.status_code == 400
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_each_webhook_answers_only_for_the_configured_gateway(client, braintree_keys):
    assert client.post("/webhooks/sandbox/", data=b"{}", content_type="application/json").status_code == 404


def test_a_settlement_declined_while_the_job_still_confirms_wins_over_it(client, user, channel_layer, sandbox_gateway):
    from asgiref.sync import async_to_sync

    from jobs.models import Job
    from project.names import JOB_RUN, PAYMENTS
    from tests.channels import deliver

    order = make_order(user)
    # The job has made the sale and is about to confirm it when the webhook lands.
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PROCESSING, transaction_id="tx-mid-flight")
    order.refresh_from_db()
    assert post_sandbox(client, sandbox_body(order, "transaction_settlement_declined")).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.SETTLEMENT_DECLINED
    Job.objects.filter(pk=order.job_id).update(status="retrying")
    async_to_sync(deliver)(PAYMENTS, {"type": JOB_RUN, "job": order.job_id})
    order.refresh_from_db()
    job = Job.objects.get(pk=order.job_id)
    assert order.status == OrderStatus.SETTLEMENT_DECLINED, "never paid after the processor refused to settle"
    assert job.status == "failed" and "already settlement declined" in job.error


def test_money_settled_for_an_order_not_counted_paid_needs_review(client, user):
    order = paid_order(user)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FAILED)
    body = sandbox_body(order, "transaction_settled", status="settled", processor_response_code="1000",
                        processor_response_text="Approved")
    assert post_sandbox(client, body).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REVIEW and "settled transaction" in order.error


def test_an_older_webhook_delivered_late_does_not_undo_a_newer_one(client, user):
    order = paid_order(user)

    def dispute(status: str, at: str) -> bytes:
        return json.dumps({"kind": f"dispute_{status}", "dispute_status": status, "timestamp": at,
                           "transaction": {"id": order.transaction_id, "status": "settled", "amount": "12.50",
                                           "currency_iso_code": "USD", "order_id": order.reference}}).encode()

    assert post_sandbox(client, dispute("won", "2026-12-01T10:05:00+00:00")).status_code == 200
    assert post_sandbox(client, dispute("open", "2026-12-01T10:00:00+00:00")).status_code == 200
    order.refresh_from_db()
    assert order.dispute == "won"
    assert PaymentEvent.objects.order_by("-id").first().outcome.startswith("Older than")


def test_a_signature_that_is_not_even_ascii_is_refused_not_a_500(client, user):
    order = paid_order(user)
    response = post_sandbox(client, sandbox_body(order, "transaction_settled"), signature="sha256=ünïcode")
    assert response.status_code == 400
