"""The books app's job kinds."""

from jobs.kinds import JobKind
from project.names import BOOK_BATCHES, BOOKS

#: One ISBN's lookup at OpenLibrary; its consumer takes along others of its batch.
BOOK = JobKind(name="book", channel=BOOKS, max_attempts_setting="BOOKS_MAX_ATTEMPTS")
#: A batch's own job: it finishes with its last book.
BOOK_BATCH = JobKind(name="book_batch", channel=BOOK_BATCHES, title="Batch #{id}", whole=True)
