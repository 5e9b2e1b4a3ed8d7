"""Errors of the payment flow."""

from integrations.exceptions import PermanentError


class PaymentDeclined(PermanentError):
    """Raised when the gateway's transaction ended in a decline; the message is
    the processor's reason.  Permanent: the same card will decline again."""
