"""Errors of the payment flow.

Each says what became of the customer's money, so the job machinery knows
whether to try again and the order shows what a person needs to know.
"""

from integrations.exceptions import PermanentError, Throttled, TransientError


class PaymentDeclined(PermanentError):
    """Raised when the processor declined the card for good (a hard decline) or the
    gateway's own rules rejected the sale (fraud, AVS, CVV...); the message is their
    reason.  The same card will decline again: the customer has to pay anew."""


class PaymentSoftDeclined(TransientError):
    """Raised when the bank declined this attempt but may accept a later one (a soft
    decline such as 2000 Do Not Honor or 2001 Insufficient Funds).  Retried within
    ``PAYMENT_DECLINE_ATTEMPTS``; then the order is declined with the bank's reason."""


class ProcessorUnavailable(TransientError):
    """Raised when the processing network failed the sale (status ``failed``, the 3000s):
    nobody declined anything and nothing was charged, so the payment is tried again."""


class PaymentPending(TransientError):
    """Raised when the gateway is still authorizing the sale: we ask again later."""


class NonceSpentElsewhere(TransientError):
    """Raised when the gateway says the nonce was already used but shows no transaction of
    ours: our own sale may not be searchable yet, so we look again, within
    ``PAYMENT_DECLINE_ATTEMPTS``; after that the payment fails and the customer pays anew."""


class PaymentNeedsReview(PermanentError):
    """Raised when the gateway holds money that does not match the order: another amount,
    currency or reference, or two charges for one order.  Never recorded as paid; the
    order waits for a person, with what was found (``transaction``)."""

    def __init__(self, message: str, *, transaction=None):
        super().__init__(message)
        self.transaction = transaction


class SaleInDoubt(Throttled):
    """Raised before a second sale at a gateway that honours no idempotency key, while
    an earlier sale whose answer was lost may still land (``PAYMENT_LOST_SALE_WAIT``).
    The job waits ``retry_after`` seconds, at no cost in attempts, then searches again."""
