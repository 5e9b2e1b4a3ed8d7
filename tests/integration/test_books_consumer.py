"""The books consumers against the sandbox OpenLibrary over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from books import services
from books.isbn import isbn13_check_digit
from books.models import Author, Book, BookBatch, Subject
from books.services import batch_refresh, books_register
from jobs.models import Job
from project.names import BOOK_BATCHES, BOOKS, JOB_RUN, JOB_UPDATE, user_group
from tests.channels import deliver, drain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120), pytest.mark.engine]

UNKNOWN = "9780000000026"
WRONG_TYPES = "9780000000019"  # a sandbox record with every field of the wrong type


def unknown_isbns(n: int) -> list[str]:
    return [f"979100{i:06d}" + isbn13_check_digit(f"979100{i:06d}") for i in range(n)]


async def register(user, isbns: list[str]) -> BookBatch:
    registration = await sync_to_async(books_register)(user=user, values=isbns)
    return registration.batch


async def run_books(batch: BookBatch, *, times: int = 1) -> None:
    job_ids = [job_id async for job_id in Book.objects.filter(batch=batch).values_list("job_id", flat=True)]
    await deliver(BOOKS, *[{"type": JOB_RUN, "job": job_id} for job_id in job_ids] * times, timeout=60)


async def book(isbn: str) -> Book:
    return await Book.objects.prefetch_related("authors", "people", "subjects").aget(isbn=isbn)


def names(related) -> list[str]:
    return sorted(x.name for x in related.all())


async def test_a_batch_fills_in_every_book_and_ends_ok(channel_layer, events_layer, sandbox_openlibrary, user):
    listener = await events_layer.new_channel()
    await events_layer.group_add(user_group(user.pk), listener)
    batch = await register(user, ["0345418913", "9780451524935", "9780451526342", "9781101990322",
                                  "9780143133438", WRONG_TYPES, UNKNOWN])
    await deliver(BOOK_BATCHES, {"type": JOB_RUN, "job": batch.job_id})  # the batch's own check, first
    await run_books(batch)

    hitchhiker = await book("9780345418913")
    assert hitchhiker.status == "found" and hitchhiker.error == ""
    assert (hitchhiker.title, hitchhiker.pages, hitchhiker.publish_date) == ("The Hitchhiker's Guide to the Galaxy", 224, "1995")
    assert hitchhiker.openlibrary_key == "/books/OL7035621M"
    assert hitchhiker.openlibrary_url == "https://openlibrary.org/books/OL7035621M/The_Hitchhiker's_Guide_to_the_Galaxy"
    assert names(hitchhiker.authors) == ["Douglas Adams"]
    assert names(hitchhiker.people) == ["Arthur Dent", "Ford Prefect", "Marvin", "Trillian", "Zaphod Beeblebrox"]
    assert names(hitchhiker.subjects) == ["Fiction", "Humorous stories", "Science fiction", "Space flight"]
    assert hitchhiker.looked_up_at is not None

    nineteen, farm, treasure = await book("9780451524935"), await book("9780451526342"), await book("9781101990322")
    assert (nineteen.title, nineteen.pages, nineteen.publish_date) == ("Nineteen Eighty-Four", 328, "1961")
    assert names(nineteen.people) == ["Big Brother", "Julia", "O'Brien", "Winston Smith"]
    assert (farm.title, names(farm.authors)) == ("Animal Farm", ["George Orwell"])
    assert (treasure.title, treasure.publish_date, names(treasure.authors)) == (
        "Treasure Island", "May 05, 2016", ["Robert Louis Stevenson"])
    assert "Pirates" in names(treasure.subjects)
    # Shared records are one row each, linked to every book that names them.
    orwell = await Author.objects.aget(name="George Orwell")
    assert await orwell.books.acount() == 2
    fiction = await Subject.objects.aget(name="Fiction")
    assert await fiction.books.acount() == 4

    # Optional fields missing, or of the wrong type: found all the same.
    bare = await book("9780143133438")
    assert (bare.status, bare.title, bare.pages, bare.publish_date) == ("found", "Sandbox record with only a title", None, "")
    assert names(bare.authors) == names(bare.people) == names(bare.subjects) == []
    odd = await book(WRONG_TYPES)
    assert (odd.status, odd.title, odd.pages, odd.publish_date, odd.openlibrary_url) == ("found", "", None, "1950", "")
    assert names(odd.subjects) == ["Odd data"]

    # The unknown ISBN: a permanent failure with a clear message, at once.
    missing = await book(UNKNOWN)
    assert missing.status == "not_found"
    assert missing.error == f"No book with ISBN {UNKNOWN} at OpenLibrary"
    missing_job = await Job.objects.aget(pk=missing.job_id)
    assert (missing_job.status, missing_job.attempts, missing_job.error) == ("failed", 1, missing.error)
    assert missing_job.message == missing.error
    found_job = await Job.objects.aget(pk=hitchhiker.job_id)
    assert found_job.message == "Found “The Hitchhiker's Guide to the Galaxy” (ISBN 9780345418913)"

    # The batch ends ok, saying how many were found.
    batch = await BookBatch.objects.aget(pk=batch.pk)
    job = await Job.objects.aget(pk=batch.job_id)
    assert (job.status, job.progress) == ("ok", 100)
    assert job.message == "6 of 7 books found; 1 not at OpenLibrary"
    assert (batch.total, batch.done, batch.found, batch.not_found, batch.failed) == (7, 7, 6, 1, 0)
    assert batch.finished_at is not None

    events = await drain(events_layer, listener)
    assert all(e["type"] == JOB_UPDATE for e in events)
    batch_events = [e for e in events if e["job"]["id"] == batch.job_id]
    progress = [e["job"]["progress"] for e in batch_events]
    assert progress == sorted(progress) and progress[-1] == 100
    assert [e["job"]["status"] for e in batch_events][-1] == "ok"
    assert batch_events[-1]["job"]["kind"] == "book_batch"
    assert batch_events[-1]["job"]["subject"] == {"type": "books.bookbatch", "id": str(batch.pk)}
    assert events[-1] is batch_events[-1], "the batch ends after its last book"
    book_finals = [e for e in events if e["job"]["kind"] == "book" and e["job"]["status"] in ("ok", "failed")]
    assert len(book_finals) == 7


async def test_a_repeated_message_looks_a_book_up_once(channel_layer, sandbox_openlibrary, user):
    batch = await register(user, ["9780451524935"])
    await run_books(batch, times=3)
    nineteen = await book("9780451524935")
    job = await Job.objects.aget(pk=nineteen.job_id)
    assert (nineteen.status, job.status, job.attempts) == ("found", "ok", 1)
    assert await Author.objects.acount() == 1


async def test_an_outage_retries_durably_and_notes_it_on_the_book(channel_layer, sandbox_server, user, settings):
    settings.OPENLIBRARY_URL = sandbox_server(failure_rate=1.0).removesuffix("gateway/") + "openlibrary"
    settings.JOBS_RETRY_BASE_DELAY = 30  # far enough that the in-process retry cannot fire here
    batch = await register(user, ["9780451524935"])
    await run_books(batch)
    nineteen = await book("9780451524935")
    job = await Job.objects.aget(pk=nineteen.job_id)
    assert job.status == "retrying" and job.next_attempt_at is not None and "503" in job.error
    assert nineteen.status == "pending" and nineteen.error.startswith("Temporary problem, retrying: OpenLibrary answered 503")


async def test_exhausted_retries_fail_the_book_and_the_batch_still_ends(channel_layer, sandbox_server, user, settings):
    settings.OPENLIBRARY_URL = sandbox_server(failure_rate=1.0).removesuffix("gateway/") + "openlibrary"
    settings.BOOKS_MAX_ATTEMPTS = 1
    batch = await register(user, ["9780451524935"])
    await run_books(batch)
    nineteen = await book("9780451524935")
    job = await Job.objects.aget(pk=nineteen.job_id)
    assert (nineteen.status, job.status) == ("failed", "failed")
    assert job.message.startswith("Lookup of ISBN 9780451524935 failed: OpenLibrary answered 503")
    batch_job = await Job.objects.aget(pk=batch.job_id)
    assert (batch_job.status, batch_job.message) == ("ok", "0 of 1 book found; 1 failed")


async def test_the_batch_check_reports_and_repairs(channel_layer, user):
    batch = await register(user, ["9780451524935", "9780451526342"])
    # Books still pending: the check reports and the batch job stays running.
    await deliver(BOOK_BATCHES, {"type": JOB_RUN, "job": batch.job_id})
    job = await Job.objects.aget(pk=batch.job_id)
    assert (job.status, job.progress, job.message) == ("running", 0, "0 of 2 books looked up, 0 found")
    # Both books recorded by a worker that died before it counted them:
    # requeue sends the stalled batch job, and the check finishes it.
    await Book.objects.filter(batch=batch).aupdate(status="found")
    await Job.objects.filter(pk=batch.job_id).aupdate(status="retrying")
    await deliver(BOOK_BATCHES, {"type": JOB_RUN, "job": batch.job_id})
    job = await Job.objects.aget(pk=batch.job_id)
    assert (job.status, job.progress, job.message) == ("ok", 100, "2 of 2 books found")


def test_progress_reports_are_throttled_and_always_reach_100(db, user, monkeypatch):
    batch = books_register(user=user, values=unknown_isbns(200)).batch
    reports = []
    original = services.job_progress
    monkeypatch.setattr(services, "job_progress", lambda **kw: (reports.append(kw["progress"]), original(**kw)))
    # A fast pool: every book finishes well within one interval.
    monkeypatch.setattr(services, "PROGRESS_INTERVAL", timedelta(hours=1))
    for book_id in Book.objects.filter(batch=batch).values_list("pk", flat=True):
        with transaction.atomic():
            Book.objects.filter(pk=book_id).update(status="not_found")
            batch_refresh(batch_id=batch.pk)
    # The first book at once (the user sees work start), then one report per
    # 5% step rather than per book; the end is always reported.
    assert reports == list(range(0, 100, 5))
    job = Job.objects.get(pk=batch.job_id)
    assert (job.status, job.progress, job.message) == ("ok", 100, "0 of 200 books found; 200 not at OpenLibrary")


def test_a_slow_batch_still_reports_every_interval(db, user, monkeypatch):
    batch = books_register(user=user, values=unknown_isbns(300)).batch
    monkeypatch.setattr(services, "PROGRESS_INTERVAL", timedelta(0))
    ids = list(Book.objects.filter(batch=batch).values_list("pk", flat=True))
    for book_id in ids[:3]:
        with transaction.atomic():
            Book.objects.filter(pk=book_id).update(status="found")
            batch_refresh(batch_id=batch.pk)
    # Under one step (1% of 300 is 3 books), yet the interval has passed each time.
    assert BookBatch.objects.get(pk=batch.pk).done == 3
    assert Job.objects.get(pk=batch.job_id).message == "3 of 300 books looked up, 3 found"
