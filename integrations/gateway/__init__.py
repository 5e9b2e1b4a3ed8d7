"""The payment gateway: a Braintree-shaped two-step flow (sale, then find).

``PAYMENT_GATEWAY`` chooses the client: ``sandbox`` (the JSON gateway at
``PAYMENT_GATEWAY_URL``) or ``braintree`` (Braintree through its SDK).  Both
answer with the same ``Transaction`` and raise only our own errors.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from django.conf import settings

from integrations.gateway.client import GatewayClient
from integrations.gateway.transactions import Notification, Outcome, Transaction

__all__ = ["GatewayClient", "Notification", "Outcome", "PaymentGateway", "Transaction", "get_payment_gateway"]


class PaymentGateway(Protocol):
    """What the payment flow needs from a gateway client."""

    #: Whether a sale resent with the same ``idempotency_key`` is answered
    #: with the first sale, never made again.
    honours_idempotency_key: bool

    def sale(self, *, amount: Decimal, nonce: str, reference: str, idempotency_key: str = "") -> Transaction: ...

    def find(self, transaction_id: str) -> Transaction: ...

    def submit_for_settlement(self, transaction_id: str) -> Transaction: ...

    def find_by_reference(self, reference: str) -> list[Transaction]: ...


@lru_cache(maxsize=1)
def _client(base_url: str, key: str, connect: float, read: float) -> GatewayClient:
    return GatewayClient(base_url=base_url, key=key, timeout=(connect, read))


@lru_cache(maxsize=1)
def _braintree(
    merchant_id: str, public_key: str, private_key: str, environment: str, merchant_account_id: str,
    connect: float, read: float,
) -> PaymentGateway:
    # Imported here: the SDK is only loaded by processes configured to use it.
    from integrations.braintree import BraintreeClient

    return BraintreeClient(
        merchant_id=merchant_id,
        public_key=public_key,
        private_key=private_key,
        environment=environment,
        merchant_account_id=merchant_account_id,
        timeout=(connect, read),
    )


def get_payment_gateway() -> PaymentGateway:
    """The configured gateway client, shared by all of a process's threads."""
    if settings.PAYMENT_GATEWAY == "braintree":
        return _braintree(
            settings.BRAINTREE_MERCHANT_ID,
            settings.BRAINTREE_PUBLIC_KEY,
            settings.BRAINTREE_PRIVATE_KEY,
            settings.BRAINTREE_ENVIRONMENT,
            settings.BRAINTREE_MERCHANT_ACCOUNT_ID,
            settings.GATEWAY_CONNECT_TIMEOUT,
            settings.GATEWAY_READ_TIMEOUT,
        )
    return _client(
        settings.PAYMENT_GATEWAY_URL,
        settings.PAYMENT_GATEWAY_KEY,
        settings.GATEWAY_CONNECT_TIMEOUT,
        settings.GATEWAY_READ_TIMEOUT,
    )
