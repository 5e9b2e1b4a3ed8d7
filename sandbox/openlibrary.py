"""OpenLibrary's Books API, served by the product itself from fixture data.

``GET /sandbox/openlibrary/api/books?bibkeys=ISBN:<isbn>,...&jscmd=data&format=json``
answers in the real API's shape: an object keyed by each bibkey it knows, and
``{}`` for ISBNs it does not.  The records are in
``sandbox/fixtures/openlibrary.json``; besides them, every ISBN-13 starting
``9795`` (a range no agency uses) is a made-up book, so large batches can be
tried.  As OpenLibrary does, it refuses clients that name no contact in their
User-Agent with 403, and answers 429 to a client over
``SANDBOX_OPENLIBRARY_RATE_LIMIT``.  Latency and failures are simulated like
the gateway's (``sandbox.network``).
"""

from __future__ import annotations

import json
import math
import re
import time
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from books.isbn import isbn10_to_isbn13
from sandbox.network import TRAFFIC, simulated

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openlibrary.json"
MAX_BIBKEYS = 100


@lru_cache(maxsize=1)
def records_by_isbn() -> dict[str, dict]:
    """Every fixture record under each of its ISBN-10s and ISBN-13s."""
    index: dict[str, dict] = {}
    for record in json.loads(FIXTURES.read_text())["records"]:
        identifiers = record.get("identifiers", {})
        for isbn in [*identifiers.get("isbn_10", []), *identifiers.get("isbn_13", [])]:
            index[isbn] = record
        # OpenLibrary finds an edition by either form of its ISBN.
        for isbn in identifiers.get("isbn_10", []):
            index.setdefault(isbn10_to_isbn13(isbn), record)
    return index


SYNTHETIC_PREFIX = "9795"
_AUTHORS = ["Ada Sandbox", "Brian Placeholder", "Clara Fixture", "Dmitri Example", "Esther Stub"]
# Who is a contact in a User-Agent: an email address or a URL.
_CONTACT = re.compile(r"[^@\s()]+@[^@\s()]+\.\w+|https?://\S+")

_limiter = MovingWindowRateLimiter(MemoryStorage())


def synthetic_record(isbn13: str) -> dict:
    """A made-up record for an ISBN-13 in the sandbox's own range, the same every time."""
    number = int(isbn13[4:12])
    authors = [_AUTHORS[(number + i) % len(_AUTHORS)] for i in range(1 + number % 3)]
    return {
        "url": f"https://openlibrary.org/books/OLS{number}M/Sandbox_Book_{number}",
        "key": f"/books/OLS{number}M",
        "title": f"Sandbox Book {number}",
        "authors": [{"url": f"https://openlibrary.org/authors/OLS{_AUTHORS.index(a)}A", "name": a} for a in authors],
        "pagination": f"{100 + number % 400} p.",
        "publish_date": str(1950 + number % 70),
        "identifiers": {"isbn_13": [isbn13]},
        "subjects": [{"name": "Sandbox fiction", "url": "https://openlibrary.org/subjects/sandbox_fiction"}],
    }


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _refused(request: HttpRequest) -> JsonResponse | None:
    """403 for a client that names no contact; 429, with Retry-After, for one over the limit."""
    agent = request.headers.get("User-Agent", "")
    if not _CONTACT.search(agent):
        return _error(403, "Forbidden: name your application and a contact in the User-Agent.")
    limit = parse(settings.SANDBOX_OPENLIBRARY_RATE_LIMIT)
    if not _limiter.hit(limit, "openlibrary", agent):
        TRAFFIC["openlibrary"].throttled += 1
        # The body OpenLibrary's nginx sends (tests/fixtures/openlibrary/http_429_too_many_requests.json).
        response = JsonResponse({"status": 429, "message": "Too Many Requests. Consider using "
                                 "https://openlibrary.org/developers/dumps."}, status=429)
        reset = _limiter.get_window_stats(limit, "openlibrary", agent).reset_time
        response["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
        return response
    return None


def _unavailable(message: str) -> JsonResponse:
    return _error(503, message)


@simulated("openlibrary", _unavailable)
async def books(request: HttpRequest) -> HttpResponse:
    """GET: the records for the ``ISBN:`` bibkeys asked for."""
    if request.method != "GET":
        return _error(405, "Method not allowed.")
    if refusal := _refused(request):
        return refusal
    if request.GET.get("jscmd") != "data":
        return _error(400, "The sandbox serves jscmd=data only.")
    bibkeys = [key for key in request.GET.get("bibkeys", "").split(",") if key][:MAX_BIBKEYS]
    found = {}
    for bibkey in bibkeys:
        scheme, _, value = bibkey.partition(":")
        if scheme.upper() == "ISBN":
            isbn = re.sub(r"[\s-]", "", value).upper()
            record = records_by_isbn().get(isbn)
            if record is None and isbn.startswith(SYNTHETIC_PREFIX) and len(isbn) == 13 and isbn.isdigit():
                record = synthetic_record(isbn)
            if record is not None:
                found[bibkey] = record
    if request.GET.get("format") == "json":
        return JsonResponse(found)
    # Without format=json the real API answers JavaScript.
    return HttpResponse(f"var _OLBookInfo = {json.dumps(found)};", content_type="application/javascript")
