"""Our own small error hierarchy for third-party calls.

Each client converts its vendor's errors into these at the boundary, with
``raise ... from exc``, so the job machinery only ever has to decide between
"try again later" and "give up now".
"""

from __future__ import annotations


class IntegrationError(Exception):
    """A third-party call did not give us what we asked for."""


class TransientError(IntegrationError):
    """Raised when a third party could not answer now: a connection error, a
    timeout, an HTTP 5xx or 429, or a garbled answer.  Retrying later may work."""


class Throttled(TransientError):
    """Raised when a third party asks us to slow down (HTTP 429).  ``retry_after``
    is how many seconds it asked us to wait; the wait costs the job no attempt."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(IntegrationError):
    """Raised when a third party refused the request for good: an HTTP 4xx
    other than 429, a validation error, a decline.  Retrying cannot help; the
    message is the third party's own explanation."""


class Refused(PermanentError):
    """Raised when a third party answers with a 4xx other than 429.  ``status`` is the
    HTTP status and ``codes`` the vendor's error codes, when its body names any."""

    def __init__(self, message: str, *, status: int, codes: frozenset[str] = frozenset()):
        super().__init__(message)
        self.status = status
        self.codes = codes
