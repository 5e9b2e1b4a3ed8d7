"""Errors of the OpenLibrary client, beyond transient and permanent."""

from integrations.exceptions import PermanentError


class OpenLibraryBlocked(PermanentError):
    """Raised when OpenLibrary refuses us with 403: it blocks clients that do not name
    themselves with a contact.  A configuration error, not a missing book: every
    lookup fails the same way until ``OPENLIBRARY_USER_AGENT`` is fixed."""
