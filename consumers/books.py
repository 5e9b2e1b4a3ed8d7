"""The ``books`` channel: look ISBNs up at OpenLibrary.  ``book-batches``: check a batch.

Each message names one book's lookup; its consumer takes along other
lookups of the same batch that wait to run, up to OpenLibrary's suggested
25 a call, and records each one's outcome on its own job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from books.exceptions import BookNotFound
from books.models import Book, BookBatch
from books.kinds import BOOK, BOOK_BATCH
from books.services import (
    Lookup,
    batch_of,
    batch_refresh,
    book_companions,
    book_fail,
    book_found,
    book_note_retry,
    books_lookup,
)
from jobs.models import Job
from jobs.services import COME_DUE_TOGETHER

from jobs.consumers import JobConsumer

logger = logging.getLogger(__name__)

# How long after a group's first retry message the others follow.
FOLLOW_AFTER = timedelta(seconds=2)


class BookConsumer(JobConsumer):
    kind = BOOK

    def handle(self, job: Job) -> Lookup:
        companions = book_companions(job=job)
        try:
            outcomes = books_lookup(jobs=[job, *companions])
        except Exception as exc:
            # The lookups' own machinery failed: each job taken along meets the same error.
            outcomes = dict.fromkeys([job.pk, *(other.pk for other in companions)], exc)
        for other in companions:
            try:
                self.settle(other, lambda j: _result(outcomes[j.pk]))
            except Exception:
                # Recording it failed (the database is down): it stays running for requeue.
                logger.error("Could not record lookup job %s", other.pk, exc_info=True)
        return _result(outcomes[job.pk])

    def retry_messages(self, retries: list[tuple[int, datetime]]) -> list[tuple[int, datetime]]:
        # Lookups that failed in one call (a 429) come due together.  Were
        # each message sent at once, each would be claimed by a thread of its
        # own and make its own call: twenty at once.  The latest due goes
        # first and takes the others along; theirs follow a moment later and,
        # finding them taken, do nothing, unless something else took only
        # some of them.
        messages: list[tuple[int, datetime]] = []
        lead = None
        for job_id, when in sorted(retries, key=lambda item: item[1], reverse=True):
            if lead is None or lead - when >= COME_DUE_TOGETHER:
                lead = when  # due apart from the ones before: a group of its own
                messages.append((job_id, when))
            else:
                messages.append((job_id, lead + FOLLOW_AFTER))
        return messages

    def on_success(self, job: Job, lookup: Lookup) -> None:
        # The book is stored with its job's success, in one transaction: the
        # batch never counts a book found before its job says so.  The
        # book's own event first, then the batch's progress.
        book = book_found(lookup=lookup)
        super().on_success(job, book)
        batch_refresh(batch_id=book.batch_id)

    def on_retry(self, job: Job, exc: BaseException, delay: float) -> None:
        book_note_retry(job=job, error=str(exc))
        super().on_retry(job, exc, delay)

    def on_failure(self, job: Job, exc: BaseException) -> None:
        book = book_fail(job=job, exc=exc)
        super().on_failure(job, exc)
        # A book not found is finished too: the batch counts it.
        batch_refresh(batch_id=book.batch_id if book else None)

    def success_message(self, job: Job, book: Book) -> str:
        return f"Found “{book.title or 'Untitled'}” (ISBN {book.isbn})"

    def failure_message(self, job: Job, exc: BaseException) -> str:
        if isinstance(exc, BookNotFound):
            return str(exc)
        return f"Lookup of ISBN {job.payload.get('isbn', job.subject_id)} failed: {exc}"


class BookBatchConsumer(JobConsumer):
    kind = BOOK_BATCH

    def handle(self, job: Job) -> BookBatch:
        return batch_of(job=job)

    def on_success(self, job: Job, batch: BookBatch) -> None:
        # A batch is done when its last book is, not when this check runs:
        # report where it stands, and finish it only if every book is done.
        # Requeue sends a stalled batch here, which also repairs a count that
        # a dead worker never made.
        batch_refresh(batch_id=batch.pk, force=True)


def _result(outcome: Lookup | BaseException) -> Lookup:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
