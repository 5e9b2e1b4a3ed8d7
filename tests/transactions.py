"""Watch what this thread's connection sends, grouped by the transaction it ran in.

For tests of what must be written together (one transaction) or alone (one
statement, no transaction).  Counted by structure, never by time.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection

# What Django sends to manage a transaction, not to read or write.
_MANAGING = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


class Transactions:
    """``groups``: the statements of each transaction, in order; an autocommit statement is a group of its own."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        # The outermost atomic block of the last statement: each ``with
        # transaction.atomic()`` is an object of its own, so a new one is a
        # new transaction.
        self._block = None

    def __call__(self, execute, sql, params, many, context):
        if not sql.startswith(_MANAGING):
            block = connection.atomic_blocks[0] if connection.in_atomic_block else None
            if block is None or block is not self._block:
                self.groups.append([])
            self.groups[-1].append(sql)
            self._block = block
        return execute(sql, params, many, context)

    @property
    def statements(self) -> list[str]:
        return [sql for group in self.groups for sql in group]

    def group_of(self, *fragments: str) -> list[str]:
        """The one transaction whose statements include each fragment (each in one of them)."""
        found = [group for group in self.groups if all(any(f in sql for sql in group) for f in fragments)]
        assert len(found) == 1, f"expected one transaction with {fragments}, got {self.groups}"
        return found[0]


@contextmanager
def watching():
    """``with watching() as seen:`` every statement this thread's connection sends meanwhile."""
    seen = Transactions()
    with connection.execute_wrapper(seen):
        yield seen
