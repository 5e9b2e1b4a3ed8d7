"""``requeue``: run from cron to re-send work that never finished."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.messages import SendFailure
from jobs.requeue import RequeueReport, requeue_stuck
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
        from channels.layers import InMemoryChannelLayer, get_channel_layer

        if isinstance(get_channel_layer(), InMemoryChannelLayer) and not options["dry_run"]:
            # Its messages would go to this process's own memory, where no worker listens.
            raise CommandError(
                "The channel layer is in-memory (no REDIS_URL): this process cannot reach the workers inside "
                "the server, so nothing would run. With the embedded defaults the server requeues stuck work "
                "itself (EMBEDDED_REQUEUE_INTERVAL); set REDIS_URL to run workers and requeue as separate "
                "processes. --dry-run still lists what is stuck."
            )
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
            # Non-zero, so cron reports it; the cause decides what the operator does next.
            raise CommandError("\n  ".join([f"{report.send_failures} job(s) could not be sent:", *_unsent(report)]))


def _unsent(report: RequeueReport) -> list[str]:
    """One line per channel and cause of the jobs left unsent."""
    lines = []
    for (channel, cause), count in sorted(report.unsent.items()):
        if cause == SendFailure.FULL:
            lines.append(f"channel {channel!r} is full (capacity {report.full[channel]}): {count} job(s) left due, "
                         f"they go out on the next run once workers drain it")
        elif cause == SendFailure.TIMEOUT:
            lines.append(f"the channel layer did not answer sends to {channel!r} within JOBS_SEND_TIMEOUT "
                         f"({settings.JOBS_SEND_TIMEOUT:g}s): {count} job(s) left due, they go out on the next run")
        else:
            lines.append(f"the channel layer (Redis) is unreachable for {channel!r}: {count} job(s) left due, "
                         f"they go out on the next run once it is back")
    return lines
