"""Scenario 1: the raw channels-redis send -> receive throughput, the run's ceiling.

One process sends job-shaped messages (``{"type": "job.run", "job": id}``)
and another receives them, through the product's own layer configuration,
on the Redis of this scenario.  The figure is messages from the first send
to the last receive, per second.  Every other throughput of the run is also
shown as a share of the higher of the two figures.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess

from bench.harness import BENCH_ENV, PYTHON, ROOT, Context, CpuMeter, RedisServer, cpu_note, kill, row

logger = logging.getLogger("bench.ceiling")

SCENARIO = "1. Ceiling"


def _measure(ctx: Context, redis: RedisServer, *, count: int, tasks: int, label: str) -> tuple[float, str]:
    """(messages per second, CPU note) of one send -> receive burst."""
    env = BENCH_ENV | {
        "REDIS_URL": redis.url,
        "DATABASE_URL": f"sqlite:///{ctx.workdir / 'unused.sqlite3'}",
        "PAYMENT_GATEWAY_URL": "http://127.0.0.1:9/",
        # Room for the whole burst: the ceiling must not be a ChannelFull.
        "CHANNEL_LAYER_CAPACITY": str(count + 1000),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")} | env
    channel = f"bench-ceiling-{label}"
    argv = [PYTHON, "-m", "bench.layer_probe", "--channel", channel, "--count", str(count), "--tasks", str(tasks)]
    receiver = ctx.track(subprocess.Popen([*argv[:3], "receive", *argv[3:]], cwd=ROOT, env=env,
                                          stdout=subprocess.PIPE, text=True))
    try:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "ready":
            raise RuntimeError("the receiver did not start")
        meter = CpuMeter({"redis": [redis.proc.pid]})
        meter.start()
        sender = subprocess.run([*argv[:3], "send", *argv[3:]], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=max(5, ctx.remaining() - 15))
        if sender.returncode:
            raise RuntimeError(f"sender failed: {sender.stderr[-2000:]}")
        sent = json.loads(sender.stdout.strip().splitlines()[-1])
        out, _ = receiver.communicate(timeout=max(5, ctx.remaining() - 10))
        got = json.loads(out.strip().splitlines()[-1])
        spent = meter.stop({"sender": sent["cpu"], "receiver": got["cpu"]})
    finally:
        kill(receiver)
    rate = got["count"] / (got["last"] - sent["start"])
    cpu = f"{cpu_note(spent, got['count']).replace('per job', 'per message')}; {meter.busy_note()}"
    logger.info("ceiling %s: %d messages in %.2fs = %.0f msgs/s; %s", label, got["count"],
                got["last"] - sent["start"], rate, cpu)
    return rate, cpu


def run(ctx: Context) -> list[dict]:
    redis = ctx.redis()
    count = 1_500 if ctx.quick else 5_000
    serial, serial_cpu = _measure(ctx, redis, count=count, tasks=1, label="serial")
    concurrent, concurrent_cpu = _measure(ctx, redis, count=count, tasks=10, label="concurrent")
    ceiling = max(serial, concurrent)
    return [
        row(SCENARIO, "send->receive, 1 sender task, 1 receiver task", serial, "msgs/s",
            note=f"{count} job.run messages, one process each side; {serial_cpu}"),
        row(SCENARIO, "send->receive, 10 sender tasks, 10 receiver tasks", concurrent, "msgs/s",
            note=f"{count} messages; 10 = a worker's default --concurrency; {concurrent_cpu}"),
        row(SCENARIO, "ceiling (the higher of the two)", ceiling, "msgs/s", ceiling=True,
            note="every other throughput is also shown as a share of this"),
    ]
