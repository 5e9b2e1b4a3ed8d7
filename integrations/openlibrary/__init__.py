"""OpenLibrary's Books API: title, pages, authors, people and subjects by ISBN."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from integrations.openlibrary.client import BIBKEYS_PER_CALL, BookRecord, Link, OpenLibraryClient
from integrations.ratelimit import RateLimiter

__all__ = ["BIBKEYS_PER_CALL", "BookRecord", "Link", "OpenLibraryClient", "get_openlibrary"]


@lru_cache(maxsize=1)
def _client(base_url: str, connect: float, read: float, user_agent: str, rate: str, storage: str) -> OpenLibraryClient:
    limiter = RateLimiter(rate=rate, key=f"openlibrary:{base_url}", storage_uri=storage)
    return OpenLibraryClient(base_url=base_url, timeout=(connect, read), user_agent=user_agent, limiter=limiter)


def get_openlibrary() -> OpenLibraryClient:
    """The configured client, shared by all of a process's threads (and its pace by all processes)."""
    return _client(
        settings.OPENLIBRARY_URL,
        settings.OPENLIBRARY_CONNECT_TIMEOUT,
        settings.OPENLIBRARY_READ_TIMEOUT,
        settings.OPENLIBRARY_USER_AGENT,
        settings.OPENLIBRARY_RATE_LIMIT,
        settings.RATE_LIMIT_STORAGE_URI,
    )
