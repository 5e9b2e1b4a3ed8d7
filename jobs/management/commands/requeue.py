"""``requeue``: run from cron to re-send work that never finished."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jobs.requeue import requeue_stuck
from project.env import parse_duration


class Command(BaseCommand):
    help = "Send unfinished jobs untouched for --older-than to their channels again."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", default="5m",
                            help="Only records untouched this long: 90s, 5m, 1h (default 5m). "
                                 "Keep it above your longest job's run time.")
        parser.add_argument("--limit", type=int, default=None, help="Requeue at most this many.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be requeued; change nothing.")

    def handle(self, *args, **options):
        try:
            older_than = parse_duration(options["older_than"])
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from None
        if options["limit"] is not None and options["limit"] < 0:
            raise CommandError("--limit must be zero or more.")
        report = requeue_stuck(older_than=older_than, limit=options["limit"], dry_run=options["dry_run"])
        if not report.ran:
            self.stdout.write("another requeue run holds the lock (on another host?); nothing done")
            return
        for job_id, channel, reason in report.listed:
            self.stdout.write(f"would requeue job {job_id} on {channel}: {reason}")
        self.stdout.write(f"found {report.found}")
        for reason, count in sorted(report.found_by_reason.items()):
            self.stdout.write(f"  {count} {reason}")
        verb = "would requeue" if options["dry_run"] else "requeued"
        self.stdout.write(f"{verb} {report.requeued}")
        self.stdout.write(f"skipped {sum(report.skipped.values())}")
        for reason, count in sorted(report.skipped.items()):
            self.stdout.write(f"  {count} {reason}")
        if report.send_failures:
            raise CommandError(
                f"{report.send_failures} job(s) could not be sent; is the channel layer (Redis) reachable?"
            )
