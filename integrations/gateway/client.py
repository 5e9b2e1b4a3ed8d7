"""Client for the Braintree-shaped JSON gateway (the sandbox speaks it).

Braintree's flow is two steps: a sale that answers with a transaction, then a
find that reports the transaction's current status.  Every call carries the
merchant key; a sale carries an ``Idempotency-Key``, so a sale whose answer
was lost and is sent again is answered with the first one's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests

from integrations.exceptions import Refused, TransientError
from integrations.gateway.exceptions import (
    NONCE_CONSUMED_CODES,
    GatewayValidationError,
    InvalidWebhook,
    NonceConsumed,
)
from integrations.gateway.transactions import Notification, Transaction
from integrations.http import new_session, request_json


VENDOR = "Payment gateway"
SIGNATURE_HEADER = "X-Sandbox-Signature"


def transaction_from_json(data: Any) -> Transaction:
    """Our ``Transaction`` from the gateway's JSON; ``TransientError`` when it cannot be read."""
    try:
        return Transaction(
            id=str(data["id"]),
            status=str(data["status"]),
            amount=Decimal(str(data["amount"])),
            order_id=str(data.get("order_id") or ""),
            currency=str(data.get("currency_iso_code") or ""),
            processor_response_code=str(data.get("processor_response_code") or ""),
            processor_response_type=str(data.get("processor_response_type") or ""),
            processor_response_text=str(data.get("processor_response_text") or ""),
            gateway_rejection_reason=str(data.get("gateway_rejection_reason") or ""),
            duplicate_of=str(data.get("duplicate_of_transaction_id") or ""),
            type=str(data.get("type") or "sale"),
        )
    except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
        raise TransientError(f"{VENDOR} sent a transaction we cannot read: {exc!r}") from exc


def sign(key: str, body: bytes) -> str:
    """The signature of a sandbox webhook body: ``sha256=`` and an HMAC of it under the merchant key."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class GatewayClient:
    """Sale, find, submit for settlement and search by reference, against the gateway's JSON API."""

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        timeout: tuple[float, float] = (5.0, 20.0),
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.key = key
        self.session = session or new_session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return request_json(
                self.session, method, self.base_url + path, timeout=self.timeout, vendor=VENDOR, **kwargs
            )
        except Refused as exc:
            if exc.status == 422 and exc.codes & NONCE_CONSUMED_CODES:
                raise NonceConsumed(str(exc), codes=exc.codes) from exc
            if exc.status == 422:
                raise GatewayValidationError(str(exc), codes=exc.codes) from exc
            raise

    #: A sale sent again with the same ``Idempotency-Key`` is answered with the first.
    honours_idempotency_key = True

    def sale(self, *, amount: Decimal, nonce: str, reference: str, idempotency_key: str = "") -> Transaction:
        """Charge ``amount`` with a payment method nonce, submitted for settlement.

        A decline or rejection comes back as a transaction; a refused nonce
        or amount raises ``GatewayValidationError`` (``NonceConsumed`` for a
        used nonce).  The same ``idempotency_key`` always gets the same sale.
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        data = self._call(
            "POST",
            "transactions/",
            json={"amount": str(amount), "payment_method_nonce": nonce, "order_id": reference},
            headers=headers,
        )
        return transaction_from_json(data)

    def find(self, transaction_id: str) -> Transaction:
        """The transaction's current state."""
        return transaction_from_json(self._call("GET", f"transactions/{transaction_id}/"))

    def submit_for_settlement(self, transaction_id: str) -> Transaction:
        """Capture an authorized transaction: ask the gateway to settle what it holds."""
        return transaction_from_json(self._call("POST", f"transactions/{transaction_id}/submit_for_settlement/"))

    def find_by_reference(self, reference: str) -> list[Transaction]:
        """Every transaction the gateway holds for this order reference, oldest first."""
        data = self._call("GET", "transactions/", params={"order_id": reference})
        items = data.get("transactions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TransientError(f"{VENDOR} sent a transaction list we cannot read")
        return [transaction_from_json(item) for item in items]

    def parse_webhook(self, *, body: bytes, signature: str) -> Notification:
        """A webhook's notification, once its signature verifies under our merchant key."""
        # Bytes on both sides: compare_digest refuses str with non-ASCII characters.
        if not signature or not hmac.compare_digest(sign(self.key, body).encode(), signature.encode()):
            raise InvalidWebhook("The webhook's signature does not match our merchant key.")
        try:
            data = json.loads(body)
            timestamp = datetime.fromisoformat(data["timestamp"]) if data.get("timestamp") else None
            return Notification(
                kind=str(data["kind"]),
                transaction=transaction_from_json(data["transaction"]),
                dispute_status=str(data.get("dispute_status") or ""),
                timestamp=timestamp if timestamp is None or timestamp.tzinfo else None,
            )
        except (ValueError, KeyError, TypeError, TransientError) as exc:
            raise InvalidWebhook(f"The webhook's payload cannot be read: {exc}") from exc
