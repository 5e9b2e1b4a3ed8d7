"""Errors of the book lookups."""

from integrations.exceptions import PermanentError


class BookNotFound(PermanentError):
    """Raised when OpenLibrary has no book with the ISBN (its Books API answers
    ``{}``).  Permanent: asking again gives the same answer."""
