"""Channels' stock ``runworker`` on the product's own routing (scenario 3's comparison).

``python -m bench.stock_runworker payments`` runs
``channels.management.commands.runworker.Command``, which the product's
``jobs`` app shadows under the same name, with the product's settings and
``routing.py``.  Our ``PaymentConsumer`` runs under it unchanged: Channels'
``Worker`` gives each channel one application instance and feeds it the
channel's messages one after another, and the consumer's own ``__call__``
dispatches them in turn, so the stock worker runs one payment at a time.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from channels.management.commands.runworker import Command  # noqa: E402

logger = logging.getLogger("bench.stock_runworker")


def main() -> None:
    channels = sys.argv[1:] or ["payments"]
    # The harness waits for this word, as it does for our runworker's start line.
    logger.info("Stock Channels worker %s consuming %s", os.getpid(), ", ".join(channels))
    Command().run_from_argv(["manage.py", "runworker", *channels])


if __name__ == "__main__":
    main()
