"""Errors of the payment gateway clients, beyond transient and permanent."""

from integrations.exceptions import PermanentError


class GatewayValidationError(PermanentError):
    """Raised when the gateway refuses a request's parameters (an ``<api-error-response>``
    with validation errors); ``codes`` holds Braintree's error codes."""

    def __init__(self, message: str, *, codes: frozenset[str] = frozenset()):
        super().__init__(message)
        self.codes = codes


class NonceConsumed(GatewayValidationError):
    """Raised when the payment method nonce was already used (Braintree 91564 on a sale,
    93107 on the payment method API): a nonce pays for one transaction, approved or not."""


class InvalidWebhook(PermanentError):
    """Raised when a webhook's signature does not verify, or its payload cannot be read."""


#: Braintree's codes for a nonce that was already used.
NONCE_CONSUMED_CODES = frozenset({"91564", "93107"})
