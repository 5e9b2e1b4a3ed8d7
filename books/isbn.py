"""ISBN parsing and validation, without Django.

Librarians type, paste and scan ISBNs in every form: with hyphens or spaces,
ten digits (the last may be X) or thirteen.  Every valid one becomes the same
thirteen digits, so one book is one row whatever form it came in.
"""

from __future__ import annotations

import re

import attrs

# Hyphens (with the Unicode dashes pasted text brings) and spaces are only
# separators; anything else is an error to report.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_ISBN10 = re.compile(r"[0-9]{9}[0-9X]")
_ISBN13 = re.compile(r"[0-9]{13}")


class InvalidISBN(ValueError):
    """Raised when a string is not a valid ISBN-10 or ISBN-13; the message is
    the reason, written for the person who typed it."""


def isbn10_check_digit(first9: str) -> str:
    total = sum((10 - i) * int(d) for i, d in enumerate(first9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def isbn13_check_digit(first12: str) -> str:
    total = sum((3 if i % 2 else 1) * int(d) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_to_isbn13(isbn10: str) -> str:
    """The ISBN-13 of a valid ISBN-10: "978", its first nine digits, a new check digit."""
    first12 = "978" + isbn10[:9]
    return first12 + isbn13_check_digit(first12)


def normalize_isbn(raw: str) -> str:
    """The ISBN-13 digits of ``raw``, or ``InvalidISBN`` saying what is wrong."""
    compact = _SEPARATORS.sub("", raw).upper()
    if not compact:
        raise InvalidISBN("Empty: an ISBN has 10 or 13 digits.")
    if not re.fullmatch(r"[0-9X]+", compact):
        raise InvalidISBN("Only digits, hyphens and spaces are allowed (and X as the last character of an ISBN-10).")
    if len(compact) == 10:
        if not _ISBN10.fullmatch(compact):
            raise InvalidISBN("X may only be the last character of an ISBN-10.")
        expected = isbn10_check_digit(compact[:9])
        if compact[9] != expected:
            raise InvalidISBN(f"Wrong check digit for an ISBN-10: it ends in {compact[9]}, expected {expected}.")
        return isbn10_to_isbn13(compact)
    if len(compact) == 13:
        if not _ISBN13.fullmatch(compact):
            raise InvalidISBN("An ISBN-13 is digits only.")
        if not compact.startswith(("978", "979")):
            raise InvalidISBN("An ISBN-13 starts with 978 or 979.")
        expected = isbn13_check_digit(compact[:12])
        if compact[12] != expected:
            raise InvalidISBN(f"Wrong check digit for an ISBN-13: it ends in {compact[12]}, expected {expected}.")
        return compact
    raise InvalidISBN(f"Has {len(compact)} digits; an ISBN has 10 or 13.")


@attrs.frozen
class Entry:
    """One string of a request, and what became of it."""

    input: str
    isbn: str = ""  # ISBN-13, when valid
    reason: str = ""  # why it is invalid or a duplicate


@attrs.frozen
class Classified:
    valid: list[Entry]  # first occurrence of each ISBN, in request order
    repeated: list[Entry]  # later occurrences of an ISBN already in the request
    invalid: list[Entry]


REPEATED = "Repeated in this request."


def classify(values: list[str]) -> Classified:
    """Sort a request's strings into valid ISBNs, repeats and invalid ones."""
    seen: set[str] = set()
    valid: list[Entry] = []
    repeated: list[Entry] = []
    invalid: list[Entry] = []
    for value in values:
        try:
            isbn = normalize_isbn(value)
        except InvalidISBN as exc:
            invalid.append(Entry(input=value, reason=str(exc)))
            continue
        if isbn in seen:
            repeated.append(Entry(input=value, isbn=isbn, reason=REPEATED))
        else:
            seen.add(isbn)
            valid.append(Entry(input=value, isbn=isbn))
    return Classified(valid=valid, repeated=repeated, invalid=invalid)
