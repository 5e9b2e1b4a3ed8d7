"""Client for OpenLibrary's Books API (``/api/books?jscmd=data``); the sandbox speaks it too.

OpenLibrary's records are edited by volunteers: any field may be missing,
empty or of another type than usual.  Each one is read defensively, and
whatever cannot be used is left out rather than failing the lookup.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests

from integrations.exceptions import TransientError
from integrations.http import new_session, request_json

logger = logging.getLogger(__name__)

VENDOR = "OpenLibrary"


def _text(value: Any) -> str:
    """A clean one-line string, or "" for anything that is not a string."""
    if not isinstance(value, str):
        return ""
    # NUL is refused by PostgreSQL text columns; other control characters are noise.
    return " ".join(value.replace("\x00", "").split())


def _url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text) if text else None
    return text if parts and parts.scheme in ("http", "https") and parts.netloc else ""


def _pages(value: Any) -> int | None:
    # A number, or a string of digits; never a bool (True is an int in Python).
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000:
        return value
    return None


@attrs.frozen
class Link:
    """An author, person or subject as a book names it."""

    name: str
    url: str = ""


def _links(value: Any) -> tuple[Link, ...]:
    if not isinstance(value, list):
        return ()
    links = []
    for item in value:
        name = _text(item.get("name")) if isinstance(item, dict) else ""
        if name:
            links.append(Link(name=name, url=_url(item.get("url"))))
    return tuple(links)


@attrs.frozen
class BookRecord:
    """What OpenLibrary knows about one ISBN, as far as we use it."""

    title: str = ""
    pages: int | None = None
    publish_date: str = ""
    key: str = ""
    url: str = ""
    authors: tuple[Link, ...] = ()
    people: tuple[Link, ...] = ()
    subjects: tuple[Link, ...] = ()

    @classmethod
    def from_json(cls, data: dict) -> "BookRecord":
        publish_date = data.get("publish_date")
        if isinstance(publish_date, int) and not isinstance(publish_date, bool):
            publish_date = str(publish_date)  # a bare year sometimes comes as a number
        key = _text(data.get("key"))
        return cls(
            title=_text(data.get("title")),
            pages=_pages(data.get("number_of_pages")),
            publish_date=_text(publish_date),
            key=key if key.startswith("/") else "",
            url=_url(data.get("url")),
            authors=_links(data.get("authors")),
            people=_links(data.get("subject_people")),
            subjects=_links(data.get("subjects")),
        )


class OpenLibraryClient:
    """Look books up by ISBN in the Books API."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout: tuple[float, float] = (5.0, 20.0),
        user_agent: str = "",
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or new_session()
        if user_agent:
            self.session.headers["User-Agent"] = user_agent

    def book(self, isbn: str) -> BookRecord | None:
        """The record for an ISBN, or None when OpenLibrary has no such book.

        Raises ``TransientError`` for what may pass (network, 5xx, 429, an
        unreadable answer) and ``PermanentError`` for a refused request.
        """
        bibkey = f"ISBN:{isbn}"
        data = request_json(
            self.session,
            "GET",
            f"{self.base_url}/api/books",
            params={"bibkeys": bibkey, "jscmd": "data", "format": "json"},
            timeout=self.timeout,
            vendor=VENDOR,
        )
        if not isinstance(data, dict):
            raise TransientError(f"{VENDOR} sent an answer we cannot read (a {type(data).__name__}, not an object)")
        if not data:
            # The Books API answers {} for an ISBN it does not know.
            return None
        record = data.get(bibkey)
        if record is None and len(data) == 1:
            # OpenLibrary echoes the bibkey as sent; accept another spelling of it.
            record = next(iter(data.values()))
        if not isinstance(record, dict):
            raise TransientError(f"{VENDOR} sent an answer for {bibkey} we cannot read")
        return BookRecord.from_json(record)
