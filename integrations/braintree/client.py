"""Braintree through its official SDK, behind the same interface as ``GatewayClient``.

The flow is the gateway's two steps (a sale with our order reference as
``order_id``, then ``Transaction.find``).  Braintree has no idempotency key:
a search by reference before any new sale, and Braintree's own duplicate
check, are what make a repeated payment message harmless.  Every SDK error
and every unsuccessful result is converted here into our errors, so the job
machinery never sees a ``braintree`` type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timezone
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
from braintree.exceptions.invalid_signature_error import InvalidSignatureError

from integrations.exceptions import PermanentError, TransientError
from integrations.gateway.exceptions import NONCE_CONSUMED_CODES, GatewayValidationError, InvalidWebhook, NonceConsumed
from integrations.gateway.transactions import Notification, Transaction

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


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _transaction(tx: Any) -> Transaction:
    """Our ``Transaction`` from the SDK's, with the same fields as the JSON gateway's."""
    try:
        return Transaction(
            id=str(tx.id),
            status=str(tx.status),
            amount=Decimal(str(tx.amount)),
            order_id=_text(getattr(tx, "order_id", None)),
            currency=_text(getattr(tx, "currency_iso_code", None)),
            processor_response_code=_text(getattr(tx, "processor_response_code", None)),
            processor_response_type=_text(getattr(tx, "processor_response_type", None)),
            processor_response_text=_text(getattr(tx, "processor_response_text", None)),
            gateway_rejection_reason=_text(getattr(tx, "gateway_rejection_reason", None)),
            # The SDK has no named field for it; the XML's <duplicate-of-transaction-id> lands here.
            duplicate_of=_text(getattr(tx, "duplicate_of_transaction_id", None)),
            type=_text(getattr(tx, "type", None)) or "sale",
        )
    except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
        raise TransientError(f"{VENDOR} sent a transaction we cannot read: {exc!r}") from exc


def _result(what: str, result: Any) -> Transaction:
    """The transaction of a sale's or a capture's result; validation errors raised as ours."""
    if result is None:
        raise TransientError(f"{VENDOR} {what}: an answer with neither a transaction nor errors")
    if result.is_success or result.transaction is not None:
        # A decline or a rejection is a transaction too, recorded and classified by the caller.
        return _transaction(result.transaction)
    errors = list(result.errors.deep_errors)
    codes = frozenset(str(e.code) for e in errors)
    text = "; ".join(f"{e.message} ({e.code})" for e in errors) or result.message or f"{VENDOR} refused the {what}"
    if codes & NONCE_CONSUMED_CODES:
        raise NonceConsumed(text, codes=codes)
    raise GatewayValidationError(text, codes=codes)


class BraintreeClient:
    """Sale, find and search-by-order against Braintree, as ``GatewayClient`` does against the sandbox."""

    def __init__(
        self,
        *,
        merchant_id: str,
        public_key: str,
        private_key: str,
        environment: str | braintree.Environment = "sandbox",
        merchant_account_id: str = "",
        timeout: tuple[float, float] = (5.0, 20.0),
    ) -> None:
        # The merchant account decides the currency; none means the account's default.
        self.merchant_account_id = merchant_account_id
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

    #: Braintree has no idempotency key: a resent sale is a new sale.
    honours_idempotency_key = False

    def sale(self, *, amount: Decimal, nonce: str, reference: str, idempotency_key: str = "") -> Transaction:
        """Charge ``amount`` with a payment method nonce and submit it for settlement.

        A processor decline or a gateway rejection comes back as a
        transaction, as from the sandbox, for the caller to classify.  A
        validation error has no transaction and raises
        ``GatewayValidationError`` (``NonceConsumed`` for a used nonce).
        Braintree takes no idempotency key (``idempotency_key`` is ignored):
        its duplicate check refuses the same sale twice in a row.
        """
        params: dict[str, Any] = {
            "amount": str(amount),
            "payment_method_nonce": nonce,
            "order_id": reference,
            "options": {"submit_for_settlement": True},
        }
        if self.merchant_account_id:
            params["merchant_account_id"] = self.merchant_account_id
        transaction = _result("sale", _call("sale", self.gateway.transaction.sale, params))
        logger.info("Braintree sale for %s: transaction %s %s", reference, transaction.id, transaction.status)
        return transaction

    def find(self, transaction_id: str) -> Transaction:
        """The transaction's current state."""
        return _transaction(_call("find", self.gateway.transaction.find, transaction_id))

    def submit_for_settlement(self, transaction_id: str) -> Transaction:
        """Capture an authorized transaction: ask Braintree to settle what it holds."""
        return _result(
            "submit for settlement",
            _call("submit for settlement", self.gateway.transaction.submit_for_settlement, transaction_id),
        )

    def find_by_reference(self, reference: str) -> list[Transaction]:
        """Every sale Braintree holds for this order reference, oldest first."""

        def search() -> list[Any]:
            # The collection fetches its pages lazily: list it inside _call so
            # those requests' errors are converted too.
            return list(
                self.gateway.transaction.search(
                    braintree.TransactionSearch.order_id == reference,
                    braintree.TransactionSearch.type == braintree.Transaction.Type.Sale,
                )
            )

        found = [(tx, _transaction(tx)) for tx in _call("search", search)]
        # Braintree does not promise an order, but every transaction has created_at.
        found.sort(key=lambda pair: (str(getattr(pair[0], "created_at", "")), pair[1].id))
        return [ours for _, ours in found]

    def parse_webhook(self, *, signature: str, payload: str) -> Notification:
        """A webhook's notification, once the SDK has verified its signature with our keys."""
        try:
            notification = self.gateway.webhook_notification.parse(signature, payload)
        except InvalidSignatureError as exc:
            raise InvalidWebhook(f"{VENDOR} webhook: {exc}") from exc
        except (ExpatError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidWebhook(f"{VENDOR} webhook: a payload we cannot read ({exc.__class__.__name__})") from exc
        kind = str(notification.kind)
        timestamp = getattr(notification, "timestamp", None)
        timestamp = timestamp if isinstance(timestamp, datetime) else None
        if timestamp is not None and timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=timezone.utc)  # the SDK parses Braintree's UTC times naive
        if getattr(notification, "transaction", None) is not None:
            return Notification(kind=kind, transaction=_transaction(notification.transaction), timestamp=timestamp)
        dispute = getattr(notification, "dispute", None)
        details = getattr(dispute, "transaction", None)
        if details is None:
            raise InvalidWebhook(f"{VENDOR} webhook {kind!r} is about no transaction")
        transaction = Transaction(
            id=_text(details.id), status="", amount=Decimal(str(getattr(details, "amount", None) or 0)),
            order_id=_text(getattr(details, "order_id", None)),
        )
        return Notification(kind=kind, transaction=transaction, dispute_status=_text(getattr(dispute, "status", "")),
                            timestamp=timestamp)
