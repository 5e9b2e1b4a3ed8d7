"""Client for OpenLibrary's Books API (``/api/books?jscmd=data``); the sandbox speaks it too.

OpenLibrary's records are edited by volunteers: any field may be missing,
empty or of another type than usual.  Each one is read defensively, and
whatever cannot be used is left out rather than failing the lookup.

OpenLibrary asks API clients to name themselves with a contact, to batch
their lookups and to keep to a pace (about 3 requests a second for a client
that names itself): ISBNs go up to ``BIBKEYS_PER_CALL`` in one call, every
call waits its turn on a rate limiter the deployment shares, and a 429 empties
that limiter's window so every process pauses.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests

from integrations.exceptions import Refused, Throttled, TransientError
from integrations.http import new_session, request_json
from integrations.openlibrary.exceptions import OpenLibraryBlocked
from integrations.ratelimit import RateLimiter

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


_PAGINATION_PAGES = re.compile(r"(\d+)\s*p\b")


def _pages_from_pagination(value: Any) -> int | None:
    """The page count in a catalogue's ``pagination``: "242", "xii, 657 p. :", "80p."."""
    text = _text(value)
    if text.isdigit():
        return _pages(text)
    match = _PAGINATION_PAGES.search(text)
    return _pages(match.group(1)) if match else None


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
    """What OpenLibrary knows about one ISBN, as far as we use it.

    ``authors`` keep OpenLibrary's order: the first is the first named on the book.
    """

    title: str = ""
    subtitle: str = ""
    by_statement: str = ""
    pages: int | None = None
    publish_date: str = ""
    key: str = ""
    url: str = ""
    authors: tuple[Link, ...] = ()
    people: tuple[Link, ...] = ()
    places: tuple[Link, ...] = ()
    subjects: tuple[Link, ...] = ()
    isbn_13: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict) -> "BookRecord":
        publish_date = data.get("publish_date")
        if isinstance(publish_date, int) and not isinstance(publish_date, bool):
            publish_date = str(publish_date)  # a bare year sometimes comes as a number
        key = _text(data.get("key"))
        identifiers = data.get("identifiers") if isinstance(data.get("identifiers"), dict) else {}
        isbn_13 = identifiers.get("isbn_13") if isinstance(identifiers.get("isbn_13"), list) else []
        return cls(
            title=_text(data.get("title")),
            subtitle=_text(data.get("subtitle")),
            by_statement=_text(data.get("by_statement")),
            pages=_pages(data.get("number_of_pages")) or _pages_from_pagination(data.get("pagination")),
            publish_date=_text(publish_date),
            key=key if key.startswith("/") else "",
            url=_url(data.get("url")),
            authors=_links(data.get("authors")),
            people=_links(data.get("subject_people")),
            places=_links(data.get("subject_places")),
            subjects=_links(data.get("subjects")),
            isbn_13=tuple(_text(isbn) for isbn in isbn_13 if _text(isbn)),
        )


#: OpenLibrary suggests about 25 ISBNs a call.
BIBKEYS_PER_CALL = 25

BLOCKED = (
    "OpenLibrary refused this client (403). It blocks clients that do not name themselves: set "
    "OPENLIBRARY_USER_AGENT to your application's name and a contact, e.g. 'MyLibrary/1.0 (ops@example.com)'."
)


class OpenLibraryClient:
    """Look books up by ISBN in the Books API, in batches, at a shared pace."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout: tuple[float, float] = (5.0, 20.0),
        user_agent: str = "",
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.limiter = limiter
        self.session = session or new_session()
        if user_agent:
            self.session.headers["User-Agent"] = user_agent

    def _get(self, bibkeys: list[str]) -> dict:
        if self.limiter is not None:
            self.limiter.wait()
        try:
            data = request_json(
                self.session,
                "GET",
                f"{self.base_url}/api/books",
                params={"bibkeys": ",".join(bibkeys), "jscmd": "data", "format": "json"},
                timeout=self.timeout,
                vendor=VENDOR,
            )
        except Throttled:
            # Everyone pauses, not just this thread: the limit is per client.
            if self.limiter is not None:
                self.limiter.exhaust()
            raise
        except Refused as exc:
            if exc.status == 403:
                raise OpenLibraryBlocked(BLOCKED) from exc
            raise
        if not isinstance(data, dict):
            raise TransientError(f"{VENDOR} sent an answer we cannot read (a {type(data).__name__}, not an object)")
        return data

    def books(self, isbns: list[str]) -> dict[str, BookRecord | None]:
        """The record of each ISBN-13, or None for one OpenLibrary does not know.

        One call for up to ``BIBKEYS_PER_CALL`` ISBNs.  OpenLibrary answers
        ``{}`` for ISBNs it does not know, and also when it fails inside: a
        batch answered ``{}`` is asked again one ISBN at a time.  Raises
        ``TransientError`` for what may pass (``Throttled`` for a 429, with
        how long to wait), ``OpenLibraryBlocked`` for a 403.
        """
        if len(isbns) > BIBKEYS_PER_CALL:
            raise ValueError(f"at most {BIBKEYS_PER_CALL} ISBNs a call, got {len(isbns)}")
        if not isbns:
            return {}
        data = self._get([f"ISBN:{isbn}" for isbn in isbns])
        if not data and len(isbns) > 1:
            logger.info("OpenLibrary answered {} for %d ISBNs; asking for each alone", len(isbns))
            found: dict[str, BookRecord | None] = {}
            for isbn in isbns:
                found |= self.books([isbn])
            return found
        return self._match(isbns, data)

    def _match(self, isbns: list[str], data: dict) -> dict[str, BookRecord | None]:
        found: dict[str, BookRecord | None] = dict.fromkeys(isbns)
        for bibkey, raw in data.items():
            if not isinstance(raw, dict):
                raise TransientError(f"{VENDOR} sent an answer for {bibkey} we cannot read")
            record = BookRecord.from_json(raw)
            # OpenLibrary echoes the bibkey as sent; else the record's own ISBNs say whose it is.
            echoed = str(bibkey).removeprefix("ISBN:").replace("-", "")
            if echoed in found:
                found[echoed] = record
            elif matches := [isbn for isbn in record.isbn_13 if isbn in found]:
                found[matches[0]] = record
            elif len(isbns) == 1:
                found[isbns[0]] = record
        return found

    def book(self, isbn: str) -> BookRecord | None:
        """The record for one ISBN-13, or None when OpenLibrary has no such book."""
        return self.books([isbn])[isbn]
