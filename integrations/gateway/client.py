"""Client for the Braintree-shaped JSON gateway (the sandbox speaks it).

Braintree's flow is two steps: a sale that answers with a transaction, then a
find that reports the transaction's current status.  Searching by order id
before a sale is what makes a repeated payment message harmless.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import attrs
import requests

from integrations.exceptions import TransientError
from integrations.http import new_session, request_json

logger = logging.getLogger(__name__)

VENDOR = "Payment gateway"

# Braintree's statuses that mean the money is, or will be, ours.
SUCCESS_STATUSES = frozenset(
    {
        "authorized",
        "authorizing",
        "settled",
        "settlement_confirmed",
        "settlement_pending",
        "settling",
        "submitted_for_settlement",
    }
)


@attrs.frozen
class Transaction:
    """A gateway transaction, as far as we need it."""

    id: str
    status: str
    amount: Decimal
    order_id: str
    processor_response_text: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def decline_reason(self) -> str:
        return self.processor_response_text or self.status.replace("_", " ").capitalize()

    @classmethod
    def from_json(cls, data: Any) -> "Transaction":
        try:
            return cls(
                id=str(data["id"]),
                status=str(data["status"]),
                amount=Decimal(str(data["amount"])),
                order_id=str(data.get("order_id", "")),
                processor_response_text=str(data.get("processor_response_text") or ""),
            )
        except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
            raise TransientError(f"{VENDOR} sent a transaction we cannot read: {exc!r}") from exc


class GatewayClient:
    """Sale, find and search-by-order against the gateway's JSON API."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout: tuple[float, float] = (5.0, 20.0),
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = session or new_session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return request_json(
            self.session, method, self.base_url + path, timeout=self.timeout, vendor=VENDOR, **kwargs
        )

    def sale(self, *, amount: Decimal, nonce: str, order_id: int | str) -> Transaction:
        """Charge ``amount`` with a payment method nonce; one call, one sale."""
        data = self._call(
            "POST",
            "transactions/",
            json={"amount": str(amount), "payment_method_nonce": nonce, "order_id": str(order_id)},
        )
        return Transaction.from_json(data)

    def find(self, transaction_id: str) -> Transaction:
        """The transaction's current state."""
        return Transaction.from_json(self._call("GET", f"transactions/{transaction_id}/"))

    def find_by_order(self, order_id: int | str) -> list[Transaction]:
        """Every transaction the gateway holds for this order id, oldest first."""
        data = self._call("GET", "transactions/", params={"order_id": str(order_id)})
        items = data.get("transactions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TransientError(f"{VENDOR} sent a transaction list we cannot read")
        return [Transaction.from_json(item) for item in items]
