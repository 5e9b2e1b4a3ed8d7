"""Braintree through its official SDK, behind the same interface as ``GatewayClient``.

The flow is the gateway's two steps (a sale with ``order_id``, then
``Transaction.find``), and a search by ``order_id`` before any new sale is
what makes a repeated payment message harmless.  Every SDK error and every
unsuccessful result is converted here into our ``TransientError`` or
``PermanentError``, so the job machinery never sees a ``braintree`` type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar
from xml.parsers.expat import ExpatError

import braintree
from braintree.exceptions import (
    ConfigurationError,
    GatewayTimeoutError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnexpectedError,
)
from braintree.exceptions.braintree_error import BraintreeError

from integrations.exceptions import PermanentError, TransientError
from integrations.gateway.client import Transaction

logger = logging.getLogger(__name__)

VENDOR = "Braintree"

ENVIRONMENTS = {
    "sandbox": braintree.Environment.Sandbox,
    "production": braintree.Environment.Production,
}

# Worth another attempt: Braintree is down, overloaded or slow.
TRANSIENT_ERRORS = (
    ServerError,  # 500
    ServiceUnavailableError,  # 503
    GatewayTimeoutError,  # 504
    RequestTimeoutError,  # 408, or a search Braintree gave up on
    TooManyRequestsError,  # 429
)
# The SDK names no class for other statuses: "Unexpected HTTP_RESPONSE 502".
_UNEXPECTED_STATUS = re.compile(r"HTTP_RESPONSE (\d{3})")

T = TypeVar("T")


def _call(what: str, func: Callable[..., T], *args: Any) -> T:
    """Run one SDK call, converting its errors into ours.

    Transient: the errors above, and ``UnexpectedError``, which is also what
    the SDK raises for a refused connection or a timeout (its ``http.*``
    subclasses, with ``wrap_http_exceptions`` on) and for a 5xx it has no
    name for.  Permanent: every other ``BraintreeError`` (401
    ``AuthenticationError``, 403 ``AuthorizationError``, 404
    ``NotFoundError``, 426 ``UpgradeRequiredError``, a bad configuration) and
    any other 4xx: no retry changes a refusal.
    """
    try:
        return func(*args)
    except ConfigurationError as exc:  # a subclass of UnexpectedError
        raise PermanentError(f"{VENDOR} {what}: {_describe(exc)}") from exc
    except TRANSIENT_ERRORS as exc:
        raise TransientError(f"{VENDOR} {what}: {_describe(exc)}") from exc
    except UnexpectedError as exc:
        status = _UNEXPECTED_STATUS.search(str(exc))
        if status and 400 <= int(status.group(1)) < 500:
            raise PermanentError(f"{VENDOR} {what}: {_describe(exc)}") from exc
        raise TransientError(f"{VENDOR} {what}: {_describe(exc)}") from exc
    except BraintreeError as exc:
        raise PermanentError(f"{VENDOR} {what}: {_describe(exc)}") from exc
    except (ExpatError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        # The SDK parses the XML and builds its objects without checking them.
        raise TransientError(f"{VENDOR} {what}: an answer we cannot read ({exc.__class__.__name__})") from exc


def _describe(exc: BaseException) -> str:
    # The SDK's exceptions mostly carry no message: the class name is the news.
    detail = str(exc).strip()
    return f"{exc.__class__.__name__}: {detail}" if detail else exc.__class__.__name__


def _transaction(tx: Any) -> Transaction:
    """Our ``Transaction`` from the SDK's, with the same fields as the JSON gateway's."""
    try:
        text = getattr(tx, "processor_response_text", None) or ""
        rejected = getattr(tx, "gateway_rejection_reason", None)
        if tx.status == braintree.Transaction.Status.GatewayRejected and rejected:
            # Braintree's own fraud, AVS or CVV rules refused it; the processor said nothing.
            text = f"Gateway rejected: {rejected}"
        return Transaction(
            id=str(tx.id),
            status=str(tx.status),
            amount=Decimal(str(tx.amount)),
            order_id=str(getattr(tx, "order_id", None) or ""),
            processor_response_text=str(text),
        )
    except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
        raise TransientError(f"{VENDOR} sent a transaction we cannot read: {exc!r}") from exc


class BraintreeClient:
    """Sale, find and search-by-order against Braintree, as ``GatewayClient`` does against the sandbox."""

    def __init__(
        self,
        *,
        merchant_id: str,
        public_key: str,
        private_key: str,
        environment: str | braintree.Environment = "sandbox",
        timeout: tuple[float, float] = (5.0, 20.0),
    ) -> None:
        if isinstance(environment, str):
            environment = ENVIRONMENTS[environment]
        # A gateway object of our own, not the SDK's global Configuration: the
        # settings stay in one place and tests can build one per fake server.
        self.gateway = braintree.BraintreeGateway(
            braintree.Configuration(
                environment=environment,
                merchant_id=merchant_id,
                public_key=public_key,
                private_key=private_key,
                # (connect, read), straight to requests: never the SDK's 60 s.
                timeout=timeout,
                # Network errors as the SDK's own exceptions, not requests'.
                wrap_http_exceptions=True,
            )
        )

    def sale(self, *, amount: Decimal, nonce: str, order_id: int | str) -> Transaction:
        """Charge ``amount`` with a payment method nonce and submit it for settlement.

        A processor decline comes back as a transaction (status
        ``processor_declined`` or ``gateway_rejected``), as from the sandbox,
        so the caller records it and learns the outcome from ``find``.  A
        validation error has no transaction and is a ``PermanentError``.
        """
        result = _call(
            "sale",
            self.gateway.transaction.sale,
            {
                "amount": str(amount),
                "payment_method_nonce": nonce,
                "order_id": str(order_id),
                "options": {"submit_for_settlement": True},
            },
        )
        if result is None:
            raise TransientError(f"{VENDOR} sale: an answer with neither a transaction nor errors")
        if result.is_success:
            return _transaction(result.transaction)
        if result.transaction is not None:
            logger.info(
                "Braintree sale for order %s: transaction %s %s (%s)",
                order_id,
                result.transaction.id,
                result.transaction.status,
                result.message,
            )
            return _transaction(result.transaction)
        errors = "; ".join(f"{e.message} ({e.code})" for e in result.errors.deep_errors)
        raise PermanentError(errors or result.message or f"{VENDOR} refused the sale")

    def find(self, transaction_id: str) -> Transaction:
        """The transaction's current state."""
        return _transaction(_call("find", self.gateway.transaction.find, transaction_id))

    def find_by_order(self, order_id: int | str) -> list[Transaction]:
        """Every sale Braintree holds for this order id, oldest first."""

        def search() -> list[Any]:
            # The collection fetches its pages lazily: list it inside _call so
            # those requests' errors are converted too.
            return list(
                self.gateway.transaction.search(
                    braintree.TransactionSearch.order_id == str(order_id),
                    braintree.TransactionSearch.type == braintree.Transaction.Type.Sale,
                )
            )

        found = [(tx, _transaction(tx)) for tx in _call("search", search)]
        # Oldest first, as from the sandbox: payment_process reuses the first.
        # Braintree does not promise an order, but every transaction has created_at.
        found.sort(key=lambda pair: (str(getattr(pair[0], "created_at", "")), pair[1].id))
        return [ours for _, ours in found]
