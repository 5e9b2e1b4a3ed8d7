"""OpenLibrary's Books API: title, pages, authors, people and subjects by ISBN."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from integrations.openlibrary.client import BookRecord, Link, OpenLibraryClient

__all__ = ["BookRecord", "Link", "OpenLibraryClient", "get_openlibrary"]


@lru_cache(maxsize=1)
def _client(base_url: str, connect: float, read: float, user_agent: str) -> OpenLibraryClient:
    return OpenLibraryClient(base_url=base_url, timeout=(connect, read), user_agent=user_agent)


def get_openlibrary() -> OpenLibraryClient:
    """The configured client, shared by all of a process's threads."""
    return _client(
        settings.OPENLIBRARY_URL,
        settings.OPENLIBRARY_CONNECT_TIMEOUT,
        settings.OPENLIBRARY_READ_TIMEOUT,
        settings.OPENLIBRARY_USER_AGENT,
    )
