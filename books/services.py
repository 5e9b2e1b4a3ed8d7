"""Books: register ISBNs in bulk, look each one up at OpenLibrary, report the batch."""

from __future__ import annotations

import logging
from datetime import timedelta

import attrs
from django.db import transaction
from django.utils import timezone

from books.exceptions import BookNotFound
from books.isbn import Entry, classify
from books.models import Author, Book, BookAuthor, BookBatch, BookStatus, Entity, Person, Place, Subject
from books.selectors import batch_for_job, book_counts
from integrations.exceptions import PermanentError
from integrations.openlibrary import BIBKEYS_PER_CALL, BookRecord, Link, OpenLibraryClient, get_openlibrary
from jobs.models import Job
from jobs.services import job_claim_many, job_create, job_progress, job_succeed
from books.kinds import BOOK, BOOK_BATCH

logger = logging.getLogger(__name__)


# A batch reports its progress when it crosses a step or when this long has
# passed since the last report, and always at the end: a 500-book batch on a
# fast worker pool writes its row a few dozen times, not 500.
PROGRESS_STEP = 5  # percent
PROGRESS_INTERVAL = timedelta(seconds=0.5)

ALREADY_REGISTERED = "Already registered."
JUST_REGISTERED = "Registered a moment ago by another request."


# --- registering ------------------------------------------------------------------


@attrs.frozen
class Registration:
    """What became of each string of a bulk request."""

    batch: BookBatch | None
    accepted: list[tuple[Entry, Book]]
    duplicates: list[tuple[Entry, Book]]
    invalid: list[Entry]


def books_register(*, user, values: list[str]) -> Registration:
    """Register new ISBNs: books, their lookup jobs and a batch, in one transaction.

    ISBNs already in the catalogue are duplicates, not errors.  Two requests
    racing for the same new ISBN are safe: the insert skips conflicts, and a
    book belongs to the batch that inserted it.
    """
    classified = classify(values)
    with transaction.atomic():
        existing = {book.isbn: book for book in Book.objects.filter(isbn__in=[e.isbn for e in classified.valid])}
        fresh = [entry for entry in classified.valid if entry.isbn not in existing]
        batch, ours = None, {}
        if fresh:
            batch = BookBatch.objects.create(user=user, total=len(fresh))
            Book.objects.bulk_create([Book(isbn=e.isbn, batch=batch) for e in fresh], ignore_conflicts=True)
            ours = {book.isbn: book for book in Book.objects.filter(batch=batch)}
            raced = [e.isbn for e in fresh if e.isbn not in ours]
            if raced:
                existing.update({book.isbn: book for book in Book.objects.filter(isbn__in=raced)})
            if ours:
                _queue(batch, [ours[e.isbn] for e in fresh if e.isbn in ours])
            else:
                batch.delete()
                batch = None

    fresh_isbns = {entry.isbn for entry in fresh}
    accepted = [(entry, ours[entry.isbn]) for entry in classified.valid if entry.isbn in ours]
    duplicates = [
        (attrs.evolve(entry, reason=JUST_REGISTERED if entry.isbn in fresh_isbns else ALREADY_REGISTERED),
         existing[entry.isbn])
        for entry in classified.valid
        if entry.isbn not in ours
    ] + [(entry, ours.get(entry.isbn) or existing[entry.isbn]) for entry in classified.repeated]
    if batch is not None:
        logger.info("Batch %s: %d books queued for user %s", batch.pk, len(accepted), user.pk)
    return Registration(batch=batch, accepted=accepted, duplicates=duplicates, invalid=classified.invalid)


def _queue(batch: BookBatch, books: list[Book]) -> None:
    """The batch's job, then one lookup job per book; all sent after commit."""
    batch.total = len(books)
    batch.job = job_create(
        kind=BOOK_BATCH,
        user=batch.user,
        subject=batch,
        message=f"Looking up {_books(len(books))} at OpenLibrary",
    )
    batch.save(update_fields=["total", "job", "updated_at"])
    for book in books:
        book.job = job_create(
            kind=BOOK,
            user=batch.user,
            subject=book,
            payload={"isbn": book.isbn, "batch": batch.pk},
            message=f"Looking up ISBN {book.isbn}",
        )
    Book.objects.bulk_update(books, ["job"])


def _books(n: int) -> str:
    return f"{n} book" if n == 1 else f"{n} books"


# --- looking a book up --------------------------------------------------------------


def _book_id(job: Job) -> int | None:
    try:
        return int(job.subject_id)
    except ValueError:
        return None


def book_companions(*, job: Job) -> list[Job]:
    """Claim other lookups of the same batch that wait to run, to ask OpenLibrary about them in one call.

    Their own messages come later and find them taken: a no-op, as any
    repeated delivery is.
    """
    batch_id = job.payload.get("batch") if isinstance(job.payload, dict) else None
    if batch_id is None:
        return []
    waiting = Book.objects.filter(batch_id=batch_id, status=BookStatus.PENDING).exclude(job_id=job.pk)
    return job_claim_many(among=waiting.values("job_id"), kind=BOOK.name, limit=BIBKEYS_PER_CALL - 1)


@attrs.frozen
class Lookup:
    """What OpenLibrary said about one book: its record, or None when the book was already found."""

    book: Book
    record: BookRecord | None


def books_lookup(*, jobs: list[Job], client: OpenLibraryClient | None = None) -> dict[int, Lookup | BaseException]:
    """Ask OpenLibrary about the books of these lookup jobs, in one call; each job's answer or error.

    Nothing is stored here: ``book_found`` stores a book in the transaction
    that records its job as done, so a book is never counted found before
    its job is.  An error of the call itself (OpenLibrary down, a 429, a
    403) is every job's.
    """
    by_job: dict[int, Lookup | BaseException] = {}
    books = Book.objects.in_bulk([_book_id(job) for job in jobs if _book_id(job) is not None])
    to_ask: dict[int, Book] = {}
    for job in jobs:
        book = books.get(_book_id(job))
        if book is None:
            by_job[job.pk] = PermanentError(f"{job.subject_type} {job.subject_id} does not exist")
        elif book.status == BookStatus.FOUND:
            logger.info("Book %s is already found; nothing to look up", book.pk)
            by_job[job.pk] = Lookup(book=book, record=None)
        else:
            to_ask[job.pk] = book
    if not to_ask:
        return by_job
    try:
        records = (client or get_openlibrary()).books(sorted({book.isbn for book in to_ask.values()}))
    except Exception as exc:
        return by_job | dict.fromkeys(to_ask, exc)
    for job_id, book in to_ask.items():
        record = records.get(book.isbn)
        by_job[job_id] = (
            Lookup(book=book, record=record) if record is not None
            else BookNotFound(f"No book with ISBN {book.isbn} at OpenLibrary")
        )
    return by_job


def book_found(*, lookup: Lookup) -> Book:
    """Store what OpenLibrary said, if anything is new; run it in the transaction that records the job."""
    if lookup.record is None:
        return lookup.book
    return book_fill(book=lookup.book, record=lookup.record)


def _fit(model, field: str, value: str) -> str:
    return value[: model._meta.get_field(field).max_length]


def book_fill(*, book: Book, record: BookRecord) -> Book:
    """Store what OpenLibrary said about a book, with its authors (in order), people, places and subjects."""
    with transaction.atomic():
        # Always in this order, each sorted by key: two workers inserting the
        # same records take their locks in the same order and cannot deadlock.
        authors = entities_get_or_create(model=Author, links=record.authors)
        people = entities_get_or_create(model=Person, links=record.people)
        places = entities_get_or_create(model=Place, links=record.places)
        subjects = entities_get_or_create(model=Subject, links=record.subjects)
        book.title = _fit(Book, "title", record.title)
        book.subtitle = _fit(Book, "subtitle", record.subtitle)
        book.by_statement = _fit(Book, "by_statement", record.by_statement)
        book.pages = record.pages
        book.publish_date = _fit(Book, "publish_date", record.publish_date)
        book.openlibrary_key = _fit(Book, "openlibrary_key", record.key)
        book.openlibrary_url = record.url if len(record.url) <= 500 else ""
        book.status = BookStatus.FOUND
        book.error = ""
        book.looked_up_at = timezone.now()
        book.save()
        BookAuthor.objects.filter(book=book).delete()
        BookAuthor.objects.bulk_create(
            [BookAuthor(book=book, author=author, position=i) for i, author in enumerate(authors)]
        )
        book.people.set(people)
        book.places.set(places)
        book.subjects.set(subjects)
    return book


def entity_key(link: Link) -> str:
    """What makes two mentions one record: OpenLibrary's path, else the name.

    ``https://openlibrary.org/authors/OL34184A/Douglas_Adams`` and
    ``http://openlibrary.org/authors/OL34184A`` are the same author: the host,
    the scheme, the case and the slug after the id do not count.  The path is
    taken as OpenLibrary wrote it, ``#`` and ``?`` included: a subject such
    as "C# (Computer program language)" is keyed by all of it, never cut at
    the ``#``.
    """
    path = _path(link.url).rstrip("/").lower() if link.url else ""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] in ("authors", "books", "works"):
        path = "/".join(parts[:3])
    if path:
        return path[:255]
    return ("name:" + " ".join(link.name.casefold().split()))[:255]


def _path(url: str) -> str:
    # Not urlsplit: OpenLibrary does not escape "#" or "?" in names, so they
    # are part of the path, not a fragment or a query.
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else ""


def entities_get_or_create(*, model: type[Entity], links: tuple[Link, ...]) -> list[Entity]:
    """The rows for these links, in the links' order, created as needed; safe against concurrent workers.

    ``INSERT ... ON CONFLICT DO NOTHING`` on the unique key, then a SELECT: a
    row another worker inserted first is simply found (on PostgreSQL the
    insert waits for that worker's commit), so there is never a duplicate and
    never an IntegrityError to catch.
    """
    by_key: dict[str, Link] = {}
    for link in links:
        by_key.setdefault(entity_key(link), link)
    if not by_key:
        return []
    keys = sorted(by_key)  # insert in key order: the lock order every worker shares
    model.objects.bulk_create(
        [
            model(
                key=key,
                name=_fit(model, "name", by_key[key].name),
                openlibrary_url=by_key[key].url if len(by_key[key].url) <= 500 else "",
            )
            for key in keys
        ],
        ignore_conflicts=True,
    )
    rows = {row.key: row for row in model.objects.filter(key__in=keys)}
    return [rows[key] for key in by_key]


def book_note_retry(*, job: Job, error: str) -> None:
    """Show the temporary problem on the book while its job waits to retry."""
    Book.objects.filter(pk=_book_id(job), status=BookStatus.PENDING).update(
        error=f"Temporary problem, retrying: {error}", updated_at=timezone.now()
    )


def book_fail(*, job: Job, exc: BaseException) -> Book | None:
    """Record a lookup that cannot complete: not at OpenLibrary, or failed."""
    book = Book.objects.select_for_update().filter(pk=_book_id(job)).first()
    if book is None or book.status == BookStatus.FOUND:
        # Never turn a found book back into a missing one.
        return book
    book.status = BookStatus.NOT_FOUND if isinstance(exc, BookNotFound) else BookStatus.FAILED
    book.error = str(exc)
    book.looked_up_at = timezone.now()
    book.save(update_fields=["status", "error", "looked_up_at", "updated_at"])
    return book


# --- the batch ----------------------------------------------------------------------


def batch_of(*, job: Job) -> BookBatch:
    batch = batch_for_job(job=job)
    if batch is None:
        raise PermanentError(f"{job.subject_type} {job.subject_id} does not exist")
    return batch


def batch_refresh(*, batch_id: int | None, force: bool = False) -> BookBatch | None:
    """Recount a batch's books; report progress when due, and finish it with its last book.

    Run it in the transaction that records a book's outcome.  The batch row
    is locked first, so refreshes of one batch take turns and each counts
    what the ones before it committed: the last book's refresh always sees
    every book done, however many workers finish books at once.
    """
    if batch_id is None:
        return None
    batch = BookBatch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None or batch.job_id is None:
        return batch
    job = Job.objects.get(pk=batch.job_id)
    if job.is_finished:
        return batch
    counts = book_counts(batch_id=batch.pk)
    found = counts.get(BookStatus.FOUND, 0)
    not_found = counts.get(BookStatus.NOT_FOUND, 0)
    failed = counts.get(BookStatus.FAILED, 0)
    done = found + not_found + failed
    now = timezone.now()
    finished = done >= batch.total
    progress = 100 if finished else done * 100 // max(batch.total, 1)
    due = (
        force
        or finished
        or (done != batch.done and progress // PROGRESS_STEP != batch.progress // PROGRESS_STEP)
        or (done != batch.done and (batch.reported_at is None or now - batch.reported_at >= PROGRESS_INTERVAL))
    )
    if not due:
        return batch
    batch.done, batch.found, batch.not_found, batch.failed = done, found, not_found, failed
    batch.progress, batch.reported_at = progress, now
    if finished:
        batch.finished_at = now
        batch.save()
        job_succeed(job=job, message=batch_summary(batch))
    else:
        batch.save()
        # Paced above (every 5 %, at most every 0.5 s): each is news, sent as it comes.
        job_progress(job=job, progress=progress, message=f"{done} of {_books(batch.total)} looked up, {found} found",
                     at_once=True)
    return batch


def batch_summary(batch: BookBatch) -> str:
    """The batch's final message: how many of its books were found, and what became of the rest."""
    parts = [f"{batch.found} of {_books(batch.total)} found"]
    if batch.not_found:
        parts.append(f"{batch.not_found} not at OpenLibrary")
    if batch.failed:
        parts.append(f"{batch.failed} failed")
    return "; ".join(parts)
