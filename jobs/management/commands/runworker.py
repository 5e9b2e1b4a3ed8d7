"""``runworker``: consume background channels in pools, several messages at once.

Replaces Channels' command.  Channel selection follows Channels 1:
``--only-channels`` / ``--exclude-channels``, or names as positional
arguments as in Channels 4, or nothing for every channel in ``routing.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from channels.routing import get_default_application
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.concurrency import fit_database_pool
from jobs.worker import JobWorker
from routing import channel_routes

logger = logging.getLogger("jobs.worker")


def select_channels(*, positional: list[str], only: list[str], exclude: list[str]) -> list[str]:
    """The channels to consume, validated against ``routing.py``."""
    known = list(channel_routes)
    if positional and only:
        raise CommandError("Give channels either as arguments or with --only-channels, not both.")
    unknown = sorted(set(positional + only + exclude) - set(known))
    if unknown:
        raise CommandError(
            f"Unknown channel(s): {', '.join(unknown)}. Known channels: {', '.join(known)}."
        )
    chosen = positional or only or known
    chosen = [name for name in dict.fromkeys(chosen) if name not in exclude]
    if not chosen:
        raise CommandError(f"No channels left to consume. Known channels: {', '.join(known)}.")
    return chosen


class Command(BaseCommand):
    help = "Run a background worker on some or all of the channels in routing.py."

    def add_arguments(self, parser):
        parser.add_argument("channels", nargs="*", help="Channels to consume (default: all).")
        parser.add_argument("--only-channels", nargs="+", default=[], metavar="CHANNEL",
                            help="Consume only these channels.")
        parser.add_argument("--exclude-channels", nargs="+", default=[], metavar="CHANNEL",
                            help="Consume every channel in routing.py except these.")
        parser.add_argument("--concurrency", type=int, default=None,
                            help=f"Messages processed at once by this process "
                                 f"(default: WORKER_CONCURRENCY={settings.WORKER_CONCURRENCY}).")
        parser.add_argument("--grace", type=float, default=30.0,
                            help="Seconds in-flight messages get to finish after SIGTERM/SIGINT (default 30).")
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER, help="Channel layer alias.")

    def handle(self, *args, **options):
        channels = select_channels(
            positional=options["channels"], only=options["only_channels"], exclude=options["exclude_channels"]
        )
        concurrency = options["concurrency"] or max(settings.WORKER_CONCURRENCY, len(channels))
        if concurrency < len(channels):
            raise CommandError(
                f"--concurrency {concurrency} is less than the {len(channels)} channels consumed; "
                f"each channel needs a slot to wait in."
            )
        if options["grace"] < 0:
            raise CommandError("--grace must be zero or more seconds.")
        fit_database_pool(concurrency)
        layer = get_channel_layer(options["layer"])
        if layer is None:
            raise CommandError(f"No channel layer {options['layer']!r} is configured.")
        if layer.__class__.__name__ == "InMemoryChannelLayer":
            logger.warning(
                "The in-memory channel layer cannot reach other processes: set REDIS_URL, "
                "or let the server run its embedded workers."
            )
        worker = JobWorker(
            application=get_default_application(),
            channels=channels,
            channel_layer=layer,
            concurrency=concurrency,
            grace=options["grace"],
        )
        left = asyncio.run(self._run(worker, layer_alias=options["layer"]))
        logger.info("Worker %s stopped after %d message(s); %d left for requeue",
                    os.getpid(), worker.processed, left)
        if left:
            # Threads still blocked in third-party calls would keep the
            # interpreter alive past the grace period; their jobs stay
            # 'running' in the database and requeue picks them up.
            logging.shutdown()
            sys.stdout.flush()
            os._exit(0)

    async def _run(self, worker: JobWorker, *, layer_alias: str) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        # Said only now: this line is what a supervisor (or a test) waits for
        # before it may stop the worker, and a SIGTERM before the handlers
        # were in place would kill the process with no drain and no exit 0.
        logger.info(
            "Worker %s consuming %s with concurrency %d on layer %r (%s)",
            os.getpid(), ", ".join(worker.channels), worker.concurrency, layer_alias,
            worker.channel_layer.__class__.__name__,
        )
        return await worker.run()
