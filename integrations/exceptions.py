"""Our own small error hierarchy for third-party calls.

Each client converts its vendor's errors into these at the boundary, with
``raise ... from exc``, so the job machinery only ever has to decide between
"try again later" and "give up now".
"""


class IntegrationError(Exception):
    """A third-party call did not give us what we asked for."""


class TransientError(IntegrationError):
    """Raised when a third party could not answer now: a connection error, a
    timeout, an HTTP 5xx or 429, or a garbled answer.  Retrying later may work."""


class PermanentError(IntegrationError):
    """Raised when a third party refused the request for good: an HTTP 4xx
    other than 429, a validation error, a decline.  Retrying cannot help; the
    message is the third party's own explanation."""
