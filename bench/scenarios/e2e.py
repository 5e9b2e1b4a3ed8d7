"""Scenarios 2 and 4: end to end with a gateway that answers at once, ours and Celery's.

For each worker-process count (1 and 2), in one run and alternating:

* ours: daphne (the API and ``/ws/status/``) and ``runworker --only-channels
  payments --concurrency 10`` processes; the client POSTs ``/api/orders/``.
* Celery: the same daphne (the product's settings plus one URL, see
  ``bench/celery_urls.py``) and as many ``celery worker --pool threads
  --concurrency 10`` processes, broker on the same redis-server (db 1); the
  client POSTs ``/bench/celery/orders/``.

Both call the sandbox gateway in a daphne of its own (``SANDBOX_LATENCY_MS=0``,
its own database), write PostgreSQL (or SQLite) and push the final event
through the same channel layer to the same websocket consumer.  Each
configuration gets a fresh database, an empty Redis and an empty gateway ledger, and a
short warm-up that is not measured.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess

from bench.harness import (GATEWAY_CALLS_PER_JOB, PYTHON, Context, CpuMeter, Gateway, Profiler, cpu_note, flush_redis,
                           row)
from bench.loadgen import LoadResult, drive
from bench.names import CELERY_ORDERS_PATH, CELERY_QUEUE
from project import names

logger = logging.getLogger("bench.e2e")

OURS = "2. End to end"
PEER = "4. Peer (Celery)"
# Per worker process, for both systems: our runworker's default (WORKER_CONCURRENCY).
CONCURRENCY = 10
# Jobs in flight at once (see bench/loadgen.py): more than the workers' slots,
# so they never wait for work, and far below the channel's capacity.
WINDOW = 40
USERS = 10
# Seconds to start a configuration (database copy, daphne, workers) and warm it up.
SETUP_SECONDS = 15
# Relative time a configuration needs for the same N (measured: ours takes about twice Celery's).
WEIGHT = {"ours": 2.0, "celery": 1.0}


def run(ctx: Context) -> list[dict]:
    n = 300 if ctx.quick else 2_000
    warmup = 20 if ctx.quick else 40
    redis = ctx.redis()
    gateway = ctx.gateway(latency_ms=0)
    tokens = list(ctx.tokens.values())[:USERS]
    results: dict[tuple[str, int], LoadResult] = {}
    # Celery first at each size, so the slower system inherits whatever time Celery did not need.
    configs = [(system, workers) for workers in (1, 2) for system in ("celery", "ours")]
    for k, (system, workers) in enumerate(configs):
        # What is left, shared by the expected need (ours takes about twice as
        # long), so a machine too slow for N jobs shortens runs ("cut" in the
        # notes) instead of losing the last ones to the budget.
        weights = [WEIGHT[s] for s, _ in configs[k:]]
        limit = (ctx.remaining() - SETUP_SECONDS * len(weights) - 10) * weights[0] / sum(weights)
        results[system, workers] = _measure(ctx, system, workers, redis=redis, gateway=gateway,
                                            tokens=tokens, n=n, warmup=warmup, limit=limit)
    return _rows(ctx, results, n)


def _measure(ctx: Context, system: str, workers: int, *, redis, gateway: Gateway, tokens: list[str],
             n: int, warmup: int, limit: float) -> LoadResult:
    flush_redis(redis)
    gateway.reset()
    env = {"PAYMENT_GATEWAY_URL": gateway.url}
    if system == "celery":
        env |= {"DJANGO_SETTINGS_MODULE": "bench.celery_settings",
                "BENCH_CELERY_BROKER": redis.url.rsplit("/", 1)[0] + "/1"}
    stack = ctx.stack(f"{system}-{workers}w", redis=redis, env=env)
    try:
        web = stack.start_web()
        procs = [_start_worker(stack, system, i) for i in range(workers)]
        path = "/api/orders/" if system == "ours" else "/" + CELERY_ORDERS_PATH
        port = stack.web_ports[0]

        def load(count: int, seconds: float) -> LoadResult:
            return asyncio.run(drive(host="127.0.0.1", port=port, post_path=path, tokens=tokens, count=count,
                                     window=WINDOW, timeout=max(5.0, seconds)))

        load(warmup, 30)
        meter = CpuMeter({"web": [web.pid], "workers": [p.pid for p in procs],
                          "gateway": [gateway.server.proc.pid], "redis": [redis.proc.pid],
                          "client": [os.getpid()]}, stack.env["DATABASE_URL"])
        profiled = {"web": web} | {f"worker{i}": p for i, p in enumerate(procs)}
        with Profiler(ctx, f"e2e-{system}-{workers}w", profiled) as prof:
            meter.start()
            result = load(n, limit)
            spent = meter.stop()
            result.cpu = f"{cpu_note(spent, result.done)}; {meter.busy_note()}"
            result.machine_busy = meter.machine_busy
            result.cpu_ms = 1000 * sum(v for k, v in spent.items() if k != "client") / max(result.done, 1)
        result.profile = prof.note()
        sales = gateway.sales()
        logger.info("%s, %d worker(s): %s; %d sales at the gateway; %s", system, workers, result.summary(), sales,
                    result.cpu)
        return result
    finally:
        stack.close()


def _start_worker(stack, system: str, index: int) -> subprocess.Popen:
    if system == "ours":
        return stack.start_worker("--only-channels", names.PAYMENTS, "--concurrency", str(CONCURRENCY))
    proc = stack.spawn(f"celery-{index}", [
        PYTHON, "-m", "celery", "-A", "bench.celery_app", "worker", "--pool", "threads",
        "--concurrency", str(CONCURRENCY), "--hostname", f"bench{index}@%h", "--queues", CELERY_QUEUE,
        "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ], None)
    stack.wait_log(proc, "ready", timeout=60)
    return proc


def _rows(ctx: Context, results: dict[tuple[str, int], LoadResult], n: int) -> list[dict]:
    cores = os.cpu_count() or 1
    rows = []
    for workers in (1, 2):
        ours, peer = results["ours", workers], results["celery", workers]
        w = f"{workers} worker process{'es' if workers > 1 else ''}"
        share = ours.throughput / ctx.ceiling if ctx.ceiling else math.nan
        note = (f"{_count(ours, n)}; "
                f"--concurrency {CONCURRENCY}, {WINDOW} in flight, {USERS} users; "
                f"{ours.frames / max(ours.done, 1):.1f} websocket frames per job; {ours.cpu}")
        if ctx.ceiling and share < 0.5:
            note += (f". Missed: a job is a POST, {GATEWAY_CALLS_PER_JOB} gateway calls, a dozen SQL statements and "
                     f"several events, {ours.cpu_ms:.0f} ms of CPU in all; on {cores} cores that alone caps it near "
                     f"{cores * 1000 / ours.cpu_ms:.0f} jobs/s, where a raw message costs about 1 ms")
        rows.append(row(OURS, f"jobs/s, {w}", ours.throughput, "jobs/s", target=">= 50% of the ceiling",
                        met=(share >= 0.5) if ctx.ceiling else None, note=note + _profiled(ours)))
        for q in (50, 90):
            rows.append(row(OURS, f"latency p{q}, {w}", ours.pct(q), "ms"))
        rows.append(row(OURS, f"latency p99, {w}", ours.pct(99), "ms",
                        target=f"<= Celery's p99 ({peer.pct(99):.0f} ms)",
                        met=ours.pct(99) <= peer.pct(99) if not math.isnan(peer.pct(99)) else None,
                        note=f"POST start to the final job frame, {WINDOW} jobs in flight"))
    for workers in (1, 2):
        ours, peer = results["ours", workers], results["celery", workers]
        w = f"{workers} worker process{'es' if workers > 1 else ''}"
        rows.append(row(PEER, f"Celery jobs/s, {w}", peer.throughput, "jobs/s",
                        note=f"{_count(peer, n)}; --pool threads "
                             f"--concurrency {CONCURRENCY} per process, as many threads as ours; "
                             f"{peer.frames / max(peer.done, 1):.1f} frames per job; {peer.cpu}" + _profiled(peer)))
        for q in (50, 90, 99):
            rows.append(row(PEER, f"Celery latency p{q}, {w}", peer.pct(q), "ms"))
        ratio = ours.throughput / peer.throughput
        cpu = ours.cpu_ms / peer.cpu_ms
        busy = min(ours.machine_busy, peer.machine_busy)
        why = (f"CPU per job over every process (web, workers, gateway, Redis, PostgreSQL): ours {ours.cpu_ms:.0f} ms, "
               f"Celery's {peer.cpu_ms:.0f} ms ({cpu:.1f}x)")
        if busy >= 0.9:
            why += f"; the cores were at least {100 * busy:.0f}% busy, so throughput follows the inverse of that"
        rows.append(row(PEER, f"ours ÷ Celery, throughput, {w}", ratio, "x", target=">= 1.5x",
                        met=ratio >= 1.5 if not math.isnan(ratio) else None, note="" if ratio >= 1.5 else why))
        rows.append(row(PEER, f"CPU per job, ours ÷ Celery, {w}", cpu, "x",
                        note=f"ours {ours.cpu_ms:.0f} ms, Celery's {peer.cpu_ms:.0f} ms of CPU per job over web, "
                             f"workers, gateway, Redis and PostgreSQL; steadier than the throughput ratio on a shared "
                             f"machine, and on a CPU-bound one throughput goes as its inverse"))
        p99 = ours.pct(99) / peer.pct(99)
        rows.append(row(PEER, f"ours ÷ Celery, p99 latency, {w}", p99, "x", target="<= 1.0x",
                        met=p99 <= 1.0 if not math.isnan(p99) else None,
                        note="" if p99 <= 1.0 else f"with {WINDOW} jobs in flight latency is about {WINDOW} ÷ "
                                                   f"throughput, so it follows the throughput ratio"))
    return rows


def _count(result: LoadResult, n: int) -> str:
    text = (f"{result.done} of {n} jobs final ({result.failed} failed, {result.lost} lost, "
            f"{result.refused} refused")
    if result.cut:
        text += f", {result.cut} cut by the time limit"
    return text + ")"


def _profiled(result: LoadResult) -> str:
    return f"; {result.profile}" if result.profile else ""
