"""One side of scenario 1: send or receive N messages through the product's channel layer.

Run as ``python -m bench.layer_probe send|receive --channel C --count N --tasks K``
with the product's environment (``REDIS_URL`` ...).  It uses the layer exactly
as ``project/settings.py`` configures it, so the ceiling is the one the
product runs on.  It prints one JSON line with wall-clock timestamps, which
the scenario compares across the two processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time


def _layer():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from channels.layers import get_channel_layer

    return get_channel_layer()


async def _send(channel: str, count: int, tasks: int) -> dict:
    from jobs.messages import job_message

    layer = _layer()
    await layer.send(channel + ".warmup", {"type": "warmup"})  # open the pool before the clock starts
    counter = iter(range(1, count + 1))

    async def sender() -> None:
        for i in counter:
            await layer.send(channel, job_message(i))

    start, cpu = time.time(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(tasks)))
    return {"start": start, "end": time.time(), "count": count, "cpu": time.process_time() - cpu}


async def _receive(channel: str, count: int, tasks: int) -> dict:
    layer = _layer()
    await layer.send(channel + ".warmup", {"type": "warmup"})
    got = 0
    first = last = 0.0
    done = asyncio.Event()

    async def receiver() -> None:
        nonlocal got, first, last
        while not done.is_set():
            await layer.receive(channel)
            now = time.time()
            if not got:
                first = now
            got += 1
            last = now
            if got >= count:
                done.set()

    print("ready", flush=True)
    cpu = time.process_time()
    workers = [asyncio.create_task(receiver()) for _ in range(tasks)]
    await done.wait()
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return {"first": first, "last": last, "count": got, "cpu": time.process_time() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side", choices=["send", "receive"])
    parser.add_argument("--channel", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=1)
    args = parser.parse_args()
    side = _send if args.side == "send" else _receive
    result = asyncio.run(side(args.channel, args.count, args.tasks))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
