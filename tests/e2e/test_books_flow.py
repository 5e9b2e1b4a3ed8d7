"""A batch of ISBNs from the API to its final websocket event, across real processes."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import pytest
import websockets

from project import names

pytestmark = [pytest.mark.e2e, pytest.mark.engine]

FIXTURES = ["9780345418913", "9780451524935", "9780451526342", "9781101990322", "9780143133438"]
UNKNOWN = "9780000000026"
# The five fixture ISBNs (the first as an ISBN-10), an unknown one, a bad check digit, a repeat.
SENT = ["0-345-41891-3", *FIXTURES[1:], UNKNOWN, "9780451524936", "978-0-451-52493-5"]


def all_pages(session, url: str) -> list[dict]:
    items = []
    while url:
        page = session.get(url, timeout=30).json()
        items += page["results"]
        url = page["next"]
    return items


def test_batch_progress_rises_to_100_over_the_websocket_then_ok(make_stack):
    stack = make_stack()
    tokens = stack.create_users("alice")
    stack.start_web()
    stack.start_worker("--only-channels", names.BOOKS, names.BOOK_BATCHES)
    api = stack.api(tokens["alice"])

    async def run():
        async with websockets.connect(
            stack.ws_url(), additional_headers={"Authorization": f"Token {tokens['alice']}"}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            response = await asyncio.to_thread(api.post, stack.url("/api/books/bulk/"), json={"isbn": SENT})
            assert response.status_code == 202, response.text
            body = response.json()
            events = []
            async with asyncio.timeout(60):
                while not events or events[-1]["job"]["id"] != body["job"]["id"] or \
                        events[-1]["job"]["status"] not in ("ok", "failed"):
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "job":
                        events.append(frame)
            return body, events

    body, events = asyncio.run(run())
    assert [a["isbn"] for a in body["accepted"]] == [*FIXTURES, UNKNOWN]
    assert [(d["input"], d["reason"]) for d in body["duplicates"]] == [("978-0-451-52493-5", "Repeated in this request.")]
    assert [i["input"] for i in body["invalid"]] == ["9780451524936"]
    assert "check digit" in body["invalid"][0]["reason"]

    batch = [e for e in events if e["job"]["id"] == body["job"]["id"]]
    progress = [e["job"]["progress"] for e in batch]
    assert progress == sorted(progress), progress
    assert progress[-1] == 100 and len(set(progress)) >= 3, progress  # it rose in steps, not at once
    assert batch[-1]["job"]["status"] == "ok" and batch[-1]["job"]["kind"] == "book_batch"
    assert batch[-1]["message"] == "5 of 6 books found; 1 not at OpenLibrary"
    finals = {e["job"]["subject"]["id"]: e for e in events
              if e["job"]["kind"] == "book" and e["job"]["status"] in ("ok", "failed")}
    assert len(finals) == 6
    messages = sorted(e["message"] for e in finals.values())
    assert f"No book with ISBN {UNKNOWN} at OpenLibrary" in messages
    assert "Found “Nineteen Eighty-Four” (ISBN 9780451524935)" in messages

    books = {b["isbn"]: b for b in all_pages(api, stack.url("/api/books/"))}
    assert books[UNKNOWN]["status"] == "not_found"
    assert books["9780345418913"]["title"] == "The Hitchhiker's Guide to the Galaxy"
    assert [a["name"] for a in books["9780451526342"]["authors"]] == ["George Orwell"]
    job = api.get(body["job"]["url"]).json()
    assert (job["status"], job["progress"]) == ("ok", 100)


def test_two_workers_on_many_batches_create_no_duplicate_author_or_subject(make_stack):
    # One batch a book: a batch's lookups go to OpenLibrary together, so only
    # separate batches race.  Latency keeps every lookup in flight at once, so
    # both workers write the shared author and subjects at the same moment.
    stack = make_stack({"SANDBOX_LATENCY_MS": "300"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    workers = [stack.start_worker("--only-channels", names.BOOKS, names.BOOK_BATCHES, "--concurrency", "4")
               for _ in range(2)]
    api = stack.api(token)
    bodies = [api.post(stack.url("/api/books/bulk/"), json={"isbn": [isbn]}).json()
              for isbn in [*FIXTURES, "9780000000019"]]
    stack.wait_until(lambda: all(api.get(b["job"]["url"]).json()["status"] == "ok" for b in bodies),
                     timeout=60, what="every batch")

    authors = all_pages(api, stack.url("/api/authors/?page_size=500"))
    subjects = all_pages(api, stack.url("/api/subjects/?page_size=500"))
    people = all_pages(api, stack.url("/api/people/?page_size=500"))
    for records in (authors, subjects, people):
        assert len({r["name"] for r in records}) == len(records), sorted(r["name"] for r in records)
    assert sorted(a["name"] for a in authors) == ["Douglas Adams", "George Orwell", "Robert Louis Stevenson"]
    by_name = {s["name"]: s for s in subjects}
    assert by_name["Fiction"]["book_count"] == 4 and by_name["Political fiction"]["book_count"] == 2
    assert {a["name"]: a["book_count"] for a in authors}["George Orwell"] == 2

    # Both workers took part.
    processed = []
    for worker in workers:
        assert stack.stop(worker, signal.SIGTERM) == 0
        processed.append(int(re.search(r"stopped after (\d+) message", stack.log_of(worker)).group(1)))
    assert all(n >= 1 for n in processed) and sum(processed) >= 7, processed


def synthetic(n: int, prefix: str = "9795") -> list[str]:
    """ISBN-13s in the sandbox's made-up range (9795...: found) or just past it (9796...: unknown)."""
    from books.isbn import isbn13_check_digit

    bodies = [f"{prefix}{i:08d}" for i in range(n)]
    return [body + isbn13_check_digit(body) for body in bodies]


def run_500_isbns(make_stack, *, sandbox_rate: str) -> dict:
    """Register 475 findable and 25 unknown ISBNs; once the batch is done, OpenLibrary's traffic."""
    # Two processes of ten threads keep our limit, shared in Redis; the
    # sandbox enforces its own.  Small numbers keep the test short; the rule
    # is the same at 180 a minute.
    rate = "40 per 5 seconds"
    stack = make_stack({"OPENLIBRARY_RATE_LIMIT": rate, "SANDBOX_OPENLIBRARY_RATE_LIMIT": sandbox_rate,
                        "BOOKS_BULK_MAX": "500"})
    token = stack.create_users("alice")["alice"]
    stack.start_web()
    for _ in range(2):
        stack.start_worker("--only-channels", names.BOOKS, names.BOOK_BATCHES, "--concurrency", "10")
    findable, unknown = synthetic(475), synthetic(25, prefix="9796")
    api = stack.api(token)
    stack.sandbox_stats(reset=True)
    response = api.post(stack.url("/api/books/bulk/"), json={"isbn": findable[:200] + unknown + findable[200:]})
    assert response.status_code == 202, response.text
    batch_job = response.json()["job"]["url"]
    stack.wait_until(lambda: api.get(batch_job).json()["status"] == "ok", timeout=240, interval=2,
                     what="the 500-book batch")

    books = all_pages(api, stack.url(f"/api/books/?batch={response.json()['batch']['id']}&page_size=500"))
    found = {b["isbn"] for b in books if b["status"] == "found"}
    assert found == set(findable), f"{len(found)} of {len(findable)} findable books found"
    assert {b["isbn"] for b in books if b["status"] == "not_found"} == set(unknown)
    return stack.sandbox_stats()["openlibrary"]


# 25 ISBNs a call: about 20 calls (plus one at a time for a batch answered {}), not 500.
MAX_CALLS = 20 + 25 + 10


def test_a_500_isbn_batch_finds_every_findable_book_at_openlibrarys_pace(make_stack):
    traffic = run_500_isbns(make_stack, sandbox_rate="40 per 5 seconds")
    assert traffic["requests"] <= MAX_CALLS, traffic

