"""OpenLibrary's Books API, served by the product itself from fixture data.

``GET /sandbox/openlibrary/api/books?bibkeys=ISBN:<isbn>&jscmd=data&format=json``
answers in the real API's shape: an object keyed by each bibkey it knows, and
``{}`` for an ISBN it does not.  The records are in
``sandbox/fixtures/openlibrary.json``.  Latency and failures are simulated
like the gateway's (``sandbox.network``).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse

from sandbox.network import simulated

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
    return index


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _unavailable(message: str) -> JsonResponse:
    return _error(503, message)


@simulated("openlibrary", _unavailable)
async def books(request: HttpRequest) -> HttpResponse:
    """GET: the records for the ``ISBN:`` bibkeys asked for."""
    if request.method != "GET":
        return _error(405, "Method not allowed.")
    if request.GET.get("jscmd") != "data":
        return _error(400, "The sandbox serves jscmd=data only.")
    bibkeys = [key for key in request.GET.get("bibkeys", "").split(",") if key][:MAX_BIBKEYS]
    found = {}
    for bibkey in bibkeys:
        scheme, _, value = bibkey.partition(":")
        if scheme.upper() == "ISBN":
            record = records_by_isbn().get(re.sub(r"[\s-]", "", value).upper())
            if record is not None:
                found[bibkey] = record
    if request.GET.get("format") == "json":
        return JsonResponse(found)
    # Without format=json the real API answers JavaScript.
    return HttpResponse(f"var _OLBookInfo = {json.dumps(found)};", content_type="application/javascript")
