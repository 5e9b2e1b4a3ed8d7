"""Books against OpenLibrary as it really behaves: authors in order, batched lookups,
a pace kept, 429s waited out, and a 403 that says what to fix.

Against the sandbox OpenLibrary in a process of its own, which serves two
real recorded answers ("Concrete mathematics", "Wyrd sisters") besides its
own records, enforces OpenLibrary's limit per client, and blocks clients
that name no contact.
"""

from __future__ import annotations

import pytest
import requests
from asgiref.sync import sync_to_async

import integrations.openlibrary
from books.isbn import isbn10_to_isbn13, isbn13_check_digit
from books.models import Book, BookBatch, Place
from books.services import books_register
from jobs.models import Job
from project.names import BOOKS, JOB_RUN
from tests.channels import deliver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120), pytest.mark.engine]

CONCRETE = isbn10_to_isbn13("0201558025")
WYRD = isbn10_to_isbn13("0575043636")


def synthetic(n: int, start: int = 0) -> list[str]:
    """ISBN-13s in the sandbox's made-up range: every one is findable."""
    bodies = [f"9795{start + i:08d}" for i in range(n)]
    return [body + isbn13_check_digit(body) for body in bodies]


@pytest.fixture(autouse=True)
def fresh_client():
    # Each test may change the client's settings: build it anew.
    integrations.openlibrary._client.cache_clear()
    yield
    integrations.openlibrary._client.cache_clear()


async def register(user, isbns: list[str]) -> BookBatch:
    return (await sync_to_async(books_register)(user=user, values=isbns)).batch


async def run_books(batch: BookBatch) -> None:
    job_ids = [job_id async for job_id in Book.objects.filter(batch=batch).values_list("job_id", flat=True)]
    await deliver(BOOKS, *[{"type": JOB_RUN, "job": job_id} for job_id in job_ids], timeout=60)


async def test_authors_keep_openlibrarys_order_and_every_field_is_stored(api, channel_layer, sandbox_openlibrary, user):
    batch = await register(user, [CONCRETE, WYRD])
    await run_books(batch)
    concrete = await sync_to_async(lambda: api.get("/api/books/?search=Concrete").json())()
    [concrete] = [b for b in concrete["results"] if b["isbn"] == CONCRETE]
    assert [a["name"] for a in concrete["authors"]] == ["Ronald L. Graham", "Donald Knuth", "Oren Patashnik"]
    assert concrete["subtitle"] == "a foundation for computer science"
    assert concrete["by_statement"].startswith("Ronald L. Graham, Donald E. Knuth")
    assert concrete["pages"] == 657
    wyrd = await Book.objects.aget(isbn=WYRD)
    detail = await sync_to_async(lambda: api.get(f"/api/books/{wyrd.pk}/").json())()
    assert [a["name"] for a in detail["authors"]] == ["Terry Pratchett", "Joanne Harris", "Stephen Briggs",
                                                      "Celia Imrie"]
    assert [p["name"] for p in detail["places"]] == ["Ankh-Morpork (Imaginary place)", "Lancre (Imaginary place)"]
    assert "Sorcières" in [s["name"] for s in detail["subjects"]]
    assert await Place.objects.acount() == 2


async def test_a_batch_is_looked_up_25_isbns_a_call(channel_layer, sandbox, sandbox_openlibrary, user):
    batch = await register(user, synthetic(60))
    await sync_to_async(sandbox.stats)(reset=True)
    await run_books(batch)
    statuses = [s async for s in Book.objects.filter(batch=batch).values_list("status", flat=True)]
    assert statuses == ["found"] * 60
    jobs = [j async for j in Job.objects.filter(kind="book", book__batch=batch).values_list("status", "attempts")]
    assert jobs == [("ok", 1)] * 60
    traffic = (await sync_to_async(sandbox.stats)())["openlibrary"]
    assert traffic["requests"] == 3  # 25 + 25 + 10, not 60
    batch_job = await Job.objects.aget(pk=batch.job_id)
    assert batch_job.status == "ok" and batch_job.message == "60 of 60 books found"


async def test_a_429_is_waited_out_without_spending_an_attempt(channel_layer, sandbox, sandbox_openlibrary, user,
                                                               settings):
    settings.OPENLIBRARY_USER_AGENT = agent = "books-tests-429/1.0 (throttled@example.com)"
    settings.BOOKS_MAX_ATTEMPTS = 1  # a spent attempt would fail the book at once
    # Another process of ours used up this client's minute at OpenLibrary.
    url = sandbox_openlibrary + "/api/books"
    while requests.get(url, params={"bibkeys": "ISBN:9780451526342", "jscmd": "data", "format": "json"},
                       headers={"User-Agent": agent}, timeout=5).status_code != 429:
        pass
    batch = await register(user, [CONCRETE])
    await run_books(batch)
    book = await Book.objects.aget(isbn=CONCRETE)
    job = await Job.objects.aget(pk=book.job_id)
    assert book.status == "pending" and job.status == "retrying"
    assert job.attempts == 0, "waiting out a 429 costs no attempt"
    assert "429" in job.error
    assert 30 <= (job.next_attempt_at - job.last_attempt_at).total_seconds() <= 61  # as long as it asked


async def test_a_403_is_a_configuration_error_not_a_missing_book(channel_layer, sandbox_openlibrary, user, settings):
    settings.OPENLIBRARY_USER_AGENT = "NoContact/1.0"
    batch = await register(user, [CONCRETE])
    await run_books(batch)
    book = await Book.objects.aget(isbn=CONCRETE)
    assert book.status == "failed"
    assert "OPENLIBRARY_USER_AGENT" in book.error and "No book with ISBN" not in book.error
