"""Register ISBNs from the command line or a file, as the bulk API does."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from books.services import books_register


class Command(BaseCommand):
    help = "Register ISBNs for a user and queue their OpenLibrary lookups (one per argument or line of --file)."

    def add_arguments(self, parser):
        parser.add_argument("isbns", nargs="*", help="ISBN-10 or ISBN-13, with or without hyphens")
        parser.add_argument("--user", required=True, help="Username the batch belongs to")
        parser.add_argument("--file", help="Read ISBNs from this file, one per line ('-' for stdin)")

    def handle(self, *args, isbns, user, file, **options):
        try:
            owner = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {user!r}") from None
        values = list(isbns)
        if file:
            stream = sys.stdin if file == "-" else open(file, encoding="utf-8")
            with stream:
                values += [line.strip() for line in stream if line.strip()]
        if not values:
            raise CommandError("No ISBNs given")
        registration = books_register(user=owner, values=values)
        batch = f"batch {registration.batch.pk}" if registration.batch else "no new batch"
        self.stdout.write(
            f"{len(registration.accepted)} queued ({batch}), "
            f"{len(registration.duplicates)} duplicate(s), {len(registration.invalid)} invalid"
        )
        for entry in registration.invalid:
            self.stderr.write(f"invalid: {entry.input!r}: {entry.reason}")
