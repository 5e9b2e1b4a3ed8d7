"""Scenario 5: requeue scaling (issue #8).

``manage.py requeue`` over 10,000 and then 1,000,000 orders, with the same
1,000 unfinished jobs in both.  Reports the wall-time ratio between the two
and the peak memory of the process.  Target: the large run takes at most 1.5x
the small one; peak RSS under 200 MB.

Two databases hold the same 10,000 newest orders, 1,000 of them unfinished
(retry due after or before the sale, never started, left running); the large
one also holds 990,000 older, finished ones.  Runs alternate between the two,
so a noisy spell on the shared machine hits both sizes alike, and the fastest
run of each size is compared.  Before each run the 1,000 are put back as they
were (a run touches them) and Redis is flushed (a run fills ``payments``).
Each process is reaped with ``wait4``, which gives its peak RSS and CPU time.
Run alone: ``.venv/bin/python -m bench.scenarios.requeue [--quick] [--sqlite]``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import BENCH_ENV, PYTHON, ROOT, Context, flush_redis, is_postgres, row as _row

SCENARIO = "5. Requeue scaling"

UNFINISHED = 1_000
# Every STEP-th row of the small table is unfinished: 1,000 of 10,000.
STEP = 10
USERS = 100
SMALL = 10_000
LARGE_FULL = 1_000_000
LARGE_QUICK = 100_000
RUNS = 5
RUNS_QUICK = 3
RUN_TIMEOUT = 60.0
TARGET_RATIO = 1.5
TARGET_RSS_MB = 200.0

# Times the service call inside the real command, so start-up can be told
# apart from the work; otherwise exactly what manage.py does.
_SHIM = r"""
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
import django
django.setup()
import jobs.requeue as requeue
inner = requeue.requeue_stuck
def timed(**kwargs):
    started = time.perf_counter()
    try:
        return inner(**kwargs)
    finally:
        sys.stderr.write(f"BENCH-SERVICE-SECONDS {time.perf_counter() - started:.6f}\n")
requeue.requeue_stuck = timed
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", *sys.argv[1:]])
"""

# The scan requeue streams, with the arguments the command gives it.
_EXPLAIN = r"""
from datetime import timedelta
from django.db import connection
from django.utils import timezone
from jobs.selectors import jobs_stuck
now = timezone.now()
qs = jobs_stuck(cutoff=now - timedelta(minutes=5), now=now).only(
    "id", "kind", "channel", "status", "updated_at", "next_attempt_at", "subject_type", "subject_id")
print(qs.explain(**({"analyze": True, "buffers": True} if connection.vendor == "postgresql" else {})))
"""

# Columns of the two tables that the fill below does not write, with what
# the model would put there; new fields then need no change here.
_COLUMNS = r"""
import json
from datetime import date, datetime
from decimal import Decimal
from django.db import connection
from jobs.models import Job
from orders.models import Order
out = {}
for model in (Job, Order):
    cols = []
    for f in model._meta.concrete_fields:
        # Without a default, what the model would save: "" for a text column
        # that cannot be NULL (Django's own empty value), else NULL.
        value = f.get_default() if f.has_default() or not f.null else None
        if f.get_internal_type() == "JSONField":
            value = None if value is None else json.dumps(value)
        elif isinstance(value, (date, datetime, Decimal)):
            value = str(value)
        cols.append([f.column, f.null, value, f.db_type(connection)])
    out[model._meta.db_table] = cols
print(json.dumps(out))
"""

_JOB_COLUMNS = ("id", "kind", "channel", "user_id", "subject_type", "subject_id", "payload", "status", "progress",
                "message", "attempts", "last_attempt_at", "next_attempt_at", "error", "traceback", "created_at",
                "updated_at", "finished_at")
_ORDER_COLUMNS = ("id", "amount", "nonce", "status", "transaction_id", "transaction_status", "error",
                  "created_at", "updated_at", "job_id", "user_id", "reference")


def row(metric: str, value: float, unit: str, target: str = "", met: bool | None = None, note: str = "") -> dict:
    return _row(SCENARIO, metric, value, unit, target=target, met=met, note=note)


# --- the database ---------------------------------------------------------------


class _Database:
    """Plain SQL on the bench database, PostgreSQL or SQLite."""

    def __init__(self, url: str):
        self.url = url
        self.pg = is_postgres(url)

    @property
    def engine(self) -> str:
        return "PostgreSQL" if self.pg else "SQLite"

    def execute(self, statements: list[str], params: dict | None = None, *, autocommit: bool = False,
                bulk: bool = False) -> list[tuple]:
        """Run statements in one transaction (or autocommit); the last one's rows."""
        params = params or {}
        rows: list[tuple] = []
        if self.pg:
            import psycopg

            with psycopg.connect(self.url, autocommit=autocommit) as conn:
                if bulk:
                    # Rows built consistent by construction: skip the deferred
                    # FK checks, which would cost more than the insert itself.
                    conn.execute("SET session_replication_role = replica")
                for sql in statements:
                    cur = conn.execute(sql, params if "%(" in sql else None)
                    rows = cur.fetchall() if cur.description else []
            return rows
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        try:
            if bulk:
                conn.execute("PRAGMA synchronous=OFF")  # fill speed only; a crash fails the bench anyway
            conn.execute("BEGIN")
            for sql in statements:
                cur = conn.execute(sql, {k: v for k, v in params.items() if f":{k}" in sql})
                rows = cur.fetchall()
            conn.execute("COMMIT")
        finally:
            conn.close()
        return rows


class _Sql:
    """The fill statements, in one dialect or the other."""

    def __init__(self, pg: bool, extra: dict[str, list[list]], user_base: int):
        self.pg = pg
        self.user_base = user_base  # users are user_base + 0 .. USERS - 1
        known = {"jobs_job": _JOB_COLUMNS, "orders_order": _ORDER_COLUMNS}
        self.extra = {table: [c for c in extra.get(table, []) if c[0] not in cols] for table, cols in known.items()}

    def p(self, name: str) -> str:
        return f"%({name})s" if self.pg else f":{name}"

    @property
    def mod(self) -> str:
        # psycopg reads a bare % as a placeholder once parameters are passed.
        return "%%" if self.pg else "%"

    def series(self) -> str:
        recursive = "" if self.pg else "RECURSIVE "
        if self.pg:
            return f"WITH s(n) AS (SELECT generate_series({self.p('lo')}::bigint, {self.p('hi')}::bigint))"
        return f"WITH {recursive}s(n) AS (SELECT {self.p('lo')} UNION ALL SELECT n + 1 FROM s WHERE n < {self.p('hi')})"

    def ts(self, epoch: str) -> str:
        # Whole seconds, and on SQLite in Django's own text format, so the
        # equality check requeue makes on updated_at matches what it read.
        if self.pg:
            return f"to_timestamp({epoch})"
        return f"strftime('%Y-%m-%d %H:%M:%S', {epoch}, 'unixepoch')"

    @staticmethod
    def text(expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def created(self, n: str = "n") -> str:
        """Epoch of row n: rows up to :hi end :top_age seconds ago, :spacing seconds apart."""
        return f"({self.p('t0')} - {self.p('top_age')} - ({self.p('hi')} - {n}) * {self.p('spacing')})"

    def _extra(self, table: str) -> tuple[str, str, dict]:
        """Column list, values and parameters for the columns this fill does not know."""
        cols, values, params = "", "", {}
        for column, _null, default, db_type in self.extra[table]:
            name = f"x_{column}"
            params[name] = default
            cols += f", {column}"
            values += f", CAST({self.p(name)} AS {db_type})" if self.pg else f", {self.p(name)}"
        return cols, values, params

    def fill(self) -> tuple[list[str], dict]:
        """Finished orders :lo..:hi, each with its payment job (same id)."""
        c, m = self.created(), self.mod
        failed = f"n {m} 20 = 1"
        user = f"{self.user_base} + n {m} {USERS}"
        job_cols, job_values, job_params = self._extra("jobs_job")
        order_cols, order_values, order_params = self._extra("orders_order")
        jobs = f"""
            {self.series()}
            INSERT INTO jobs_job ({", ".join(_JOB_COLUMNS)}{job_cols})
            SELECT n, 'payment', 'payments', {user}, 'orders.order', {self.text('n')}, '{{}}',
                CASE WHEN {failed} THEN 'failed' ELSE 'ok' END,
                CASE WHEN {failed} THEN 60 ELSE 100 END,
                CASE WHEN {failed} THEN 'Payment declined: Do Not Honor'
                     ELSE 'Payment paid (transaction tx' || {self.text('n')} || ')' END,
                1, {self.ts(c + ' + 1')}, NULL, CASE WHEN {failed} THEN 'Do Not Honor' ELSE '' END, '',
                {self.ts(c)}, {self.ts(c + ' + 2')}, {self.ts(c + ' + 2')}{job_values}
            FROM s"""
        orders = f"""
            {self.series()}
            INSERT INTO orders_order ({", ".join(_ORDER_COLUMNS)}{order_cols})
            SELECT n, 1 + (n {m} 10000) / 100.0, 'fake-valid-nonce',
                CASE WHEN {failed} THEN 'declined' ELSE 'paid' END,
                'tx' || {self.text('n')},
                CASE WHEN {failed} THEN 'processor_declined' ELSE 'submitted_for_settlement' END,
                CASE WHEN {failed} THEN 'Do Not Honor' ELSE '' END,
                {self.ts(c)}, {self.ts(c + ' + 2')}, n, {user}, 'bench-' || {self.text('n')}{order_values}
            FROM s"""
        return [jobs, orders], job_params | order_params

    def users(self) -> str:
        return f"""
            {self.series()}
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                is_staff, is_active, date_joined)
            SELECT '!', {self.false}, 'requeue-bench-' || {self.text('n')}, '', '', '', {self.false}, {self.true},
                {self.ts(self.p('t0'))}
            FROM s"""

    @property
    def true(self) -> str:
        return "true" if self.pg else "1"

    @property
    def false(self) -> str:
        return "false" if self.pg else "0"

    def unfinished(self) -> list[str]:
        """Make every STEP-th row of the small table unfinished, in four kinds of 250.

        Idempotent, so it also puts back whatever a requeue run changed.  By
        (id / STEP) % 4: 0 retry due after the sale, 1 retry due before it,
        2 never started (message lost), 3 left running by a dead worker.
        All untouched for over an hour, so ``--older-than 5m`` finds them.
        """
        m = self.mod
        created = self.created("id")
        kind = f"(id / {STEP}) {m} 4"
        where = f"WHERE id {m} {STEP} = 0 AND id <= {self.p('hi')}"
        jobs = f"""
            UPDATE jobs_job SET
                status = CASE {kind} WHEN 2 THEN 'pending' WHEN 3 THEN 'running' ELSE 'retrying' END,
                progress = CASE {kind} WHEN 0 THEN 60 WHEN 2 THEN 0 ELSE 10 END,
                attempts = CASE {kind} WHEN 2 THEN 0 ELSE 1 END,
                message = CASE {kind} WHEN 2 THEN 'Payment queued' WHEN 3 THEN 'Processing payment'
                          ELSE 'Temporary problem (gateway 503); trying again in 30.0s' END,
                error = CASE WHEN {kind} IN (0, 1) THEN 'gateway 503' ELSE '' END,
                last_attempt_at = CASE {kind} WHEN 2 THEN NULL ELSE {self.ts(created + ' + 1')} END,
                next_attempt_at = CASE WHEN {kind} IN (0, 1) THEN {self.ts(created + ' + 31')} ELSE NULL END,
                updated_at = {self.ts(created + ' + 1')},
                finished_at = NULL
            {where}"""
        orders = f"""
            UPDATE orders_order SET
                status = CASE {kind} WHEN 2 THEN 'pending' ELSE 'processing' END,
                transaction_id = CASE {kind} WHEN 0 THEN 'tx' || {self.text('id')} ELSE '' END,
                transaction_status = CASE {kind} WHEN 0 THEN 'submitted_for_settlement' ELSE '' END,
                error = CASE WHEN {kind} IN (0, 1) THEN 'Temporary problem, retrying: gateway 503' ELSE '' END,
                updated_at = {self.ts(created + ' + 1')}
            {where}"""
        return [jobs, orders]

    def sequences(self) -> list[str]:
        if not self.pg:
            return []  # SQLite's AUTOINCREMENT follows the largest rowid by itself
        return [f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
                for t in ("jobs_job", "orders_order")]


def _grow(db: _Database, sql: _Sql, params: dict) -> None:
    """Insert the large history; on PostgreSQL without the secondary indexes, rebuilt after.

    Building an index once is several times cheaper than growing it row by
    row; a rebuilt index is denser than an organically grown one, which
    favours neither run (the scan reads ~1,000 entries either way).
    """
    statements, extra = sql.fill()
    if not db.pg:
        db.execute(statements, params | extra, bulk=True)
        return
    indexes = db.execute(["""
        SELECT indexname, indexdef FROM pg_indexes
        WHERE tablename IN ('jobs_job', 'orders_order')
          AND indexname NOT IN (SELECT conname FROM pg_constraint)"""])
    db.execute([f'DROP INDEX "{name}"' for name, _ in indexes] + statements
               + [definition for _, definition in indexes], params | extra, bulk=True)


# --- running the command ------------------------------------------------------


@dataclass
class Measure:
    wall: float
    service: float | None
    maxrss_mb: float
    cpu: float
    found: int | None
    requeued: int | None
    returncode: int
    output: str = field(repr=False, default="")


def _requeue_once(ctx: Context, env: dict[str, str], log: Path) -> Measure:
    """One ``requeue`` process; wall time, and peak RSS and CPU from wait4 on the child."""
    with open(log, "w+b") as out:
        started = time.perf_counter()
        proc = ctx.track(subprocess.Popen([PYTHON, "-c", _SHIM, "requeue", "--older-than", "5m"],
                                          cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        timer = threading.Timer(RUN_TIMEOUT, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        text = out.read().decode(errors="replace")

    def number(pattern: str) -> float | None:
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else None

    found, requeued = number(r"^found (\d+)"), number(r"^requeued (\d+)")
    return Measure(
        wall=wall,
        service=number(r"^BENCH-SERVICE-SECONDS ([\d.]+)"),
        maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        cpu=usage.ru_utime + usage.ru_stime,
        found=int(found) if found is not None else None,
        requeued=int(requeued) if requeued is not None else None,
        returncode=proc.returncode,
        output=text,
    )


def _manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def _plan_summary(plan: str) -> str:
    """The scan's access path and, on PostgreSQL, its execution time."""
    lines = [line.strip(" ->") for line in plan.splitlines() if line.strip()]
    access = next((line for line in lines if re.search(r"Index|SCAN|SEARCH", line)), lines[0] if lines else "?")
    access = re.sub(r"\s+\(cost=[^)]*\)", "", access)
    access = re.sub(r"\s*\(actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=\d+\)", r" rows=\1", access)
    access = re.sub(r"^\d+ \d+ \d+ ", "", access)  # SQLite's node ids
    timing = next((line for line in lines if line.startswith("Execution Time")), "")
    return f"{access}{'; ' + timing.lower() if timing else ''}"


# --- the scenario ---------------------------------------------------------------


def _env(db: _Database, redis_url: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))} | BENCH_ENV | {
        "DATABASE_URL": db.url,
        "REDIS_URL": redis_url,
        "PAYMENT_GATEWAY_URL": "http://127.0.0.1:9/",  # never called by requeue
    }


def _prepare(db: _Database, columns: dict, t0: int) -> _Sql:
    """The bench users and the small table (its 1,000 unfinished included)."""
    db.execute([_Sql(db.pg, columns, 0).users()], {"lo": 1, "hi": USERS, "t0": t0})
    user_ids = [r[0] for r in db.execute(
        ["SELECT id FROM auth_user WHERE username LIKE 'requeue-bench-%' ORDER BY id"])]
    if len(user_ids) != USERS or user_ids[-1] - user_ids[0] != USERS - 1:
        raise RuntimeError(f"expected {USERS} consecutive user ids, got {user_ids[:3]}..{user_ids[-3:]}")
    sql = _Sql(db.pg, columns, user_ids[0])
    statements, extra = sql.fill()
    db.execute(statements + sql.unfinished() + sql.sequences(), _small(t0) | extra, bulk=True)
    return sql


def _small(t0: int) -> dict:
    return {"t0": t0, "spacing": 10, "top_age": 3600, "lo": 1, "hi": SMALL}


def run(ctx: Context) -> list[dict]:
    """Two databases, 10k and large, with the same 1,000 unfinished; runs alternate between them.

    Alternating spreads the noise of a shared machine over both sizes alike,
    where measuring one size after the other would give either one a quiet
    or a busy spell.
    """
    large = LARGE_QUICK if ctx.quick else LARGE_FULL
    runs = RUNS_QUICK if ctx.quick else RUNS
    scenario_started = time.monotonic()
    load_before = os.getloadavg()[0]
    redis = ctx.redis("redis-requeue")
    t0 = int(time.time())

    db_small = _Database(ctx.new_database("requeue_small"))
    db_large = _Database(ctx.new_database("requeue_large"))
    env_small, env_large = _env(db_small, redis.url), _env(db_large, redis.url)
    columns = json.loads(_manage(env_small, "shell", "-c", _COLUMNS).strip().splitlines()[-1])
    sql_small, sql_large = _prepare(db_small, columns, t0), _prepare(db_large, columns, t0)
    grow_started = time.monotonic()
    # History older than the small table's rows: the newest 10,000 rows, and
    # the 1,000 unfinished among them, are the same rows in both databases.
    _grow(db_large, sql_large, {"t0": t0, "spacing": 2, "top_age": 3600 + SMALL * 10, "lo": SMALL + 1, "hi": large})
    db_large.execute(sql_large.sequences())
    fill_large = time.monotonic() - grow_started
    pg = db_small.pg

    sides = {"small": (db_small, sql_small, env_small), "large": (db_large, sql_large, env_large)}
    results: dict[str, list[Measure]] = {"small": [], "large": []}
    for i in range(runs):
        if i >= 2 and ctx.remaining() < 20:
            break  # two pairs make a figure; keep the rest of the budget for the plans and clean-up
        for label in ("small", "large") if i % 2 == 0 else ("large", "small"):
            db, sql, env = sides[label]
            db.execute(sql.unfinished(), _small(t0))
            if pg:
                # What autovacuum does to a live table: statistics, and no dead
                # entries from the previous run's updates for the scan to skip.
                # Django never runs ANALYZE on SQLite, so a production SQLite
                # file has no statistics and neither has this one.
                db.execute(["VACUUM ANALYZE jobs_job, orders_order"], autocommit=True)
            flush_redis(redis)
            m = _requeue_once(ctx, env, ctx.workdir / f"requeue-{label}-{i}.log")
            if m.returncode != 0 or m.requeued != UNFINISHED or m.found != UNFINISHED:
                raise RuntimeError(f"requeue on the {label} table: exit {m.returncode}, found {m.found}, "
                                   f"requeued {m.requeued} (expected {UNFINISHED}):\n{m.output[-3000:]}")
            results[label].append(m)
    for db, sql, _env_ in sides.values():
        db.execute(sql.unfinished(), _small(t0))
    with ThreadPoolExecutor(2) as pool:  # two Django start-ups side by side
        plans = dict(zip(sides, pool.map(lambda side: _manage(side[2], "shell", "-c", _EXPLAIN), sides.values())))
    for label, plan in plans.items():
        (ctx.workdir / f"explain-{label}.txt").write_text(plan)

    small_runs, large_runs = results["small"], results["large"]
    runs = len(small_runs)
    # The fastest run of each size: the machine is shared and noise only ever
    # adds time, so the minimum is the best estimate of the command's own cost.
    median = statistics.median
    small_wall, large_wall = min(m.wall for m in small_runs), min(m.wall for m in large_runs)
    small_svc = min(m.service or 0.0 for m in small_runs)
    large_svc = min(m.service or 0.0 for m in large_runs)
    ratio = large_wall / small_wall
    paired = median(b.wall / a.wall for a, b in zip(small_runs, large_runs))
    svc_ratio = large_svc / small_svc if small_svc else float("nan")
    small_rss, large_rss = max(m.maxrss_mb for m in small_runs), max(m.maxrss_mb for m in large_runs)

    def walls(ms: list[Measure]) -> str:
        return "/".join(f"{m.wall:.2f}" for m in ms)

    def label(n: int) -> str:
        return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"

    how = (f"fastest of {runs} runs ({{}} s), alternating with the other size; the same {UNFINISHED} "
           f"unfinished jobs restored and Redis flushed before each")
    quick = "" if large == LARGE_FULL else f"; quick run: {large:,} rows, not 1,000,000"
    total = time.monotonic() - scenario_started
    return [
        row(f"wall time, {label(SMALL)} orders", small_wall, "s",
            note=how.format(walls(small_runs)) + f"; {db_small.engine}, DEBUG off, real Redis"),
        row(f"wall time, {label(large)} orders", large_wall, "s", note=how.format(walls(large_runs)) + quick),
        row(f"wall-time ratio {label(large)} / {label(SMALL)}", ratio, "x", f"<= {TARGET_RATIO}x",
            ratio <= TARGET_RATIO,
            note=f"whole process: interpreter, Django start-up, scan, {UNFINISHED} sends; "
                 f"median of the {runs} paired ratios {paired:.2f}x{quick}"),
        row(f"requeue_stuck() ratio {label(large)} / {label(SMALL)}", svc_ratio, "x",
            note=f"the service call alone, start-up excluded: {small_svc * 1000:.0f} ms vs {large_svc * 1000:.0f} ms"),
        row(f"peak RSS, {label(SMALL)} orders", small_rss, "MB", f"< {TARGET_RSS_MB:.0f} MB",
            small_rss < TARGET_RSS_MB, note=f"ru_maxrss of the requeue process (wait4), max of {runs} runs"),
        row(f"peak RSS, {label(large)} orders", large_rss, "MB", f"< {TARGET_RSS_MB:.0f} MB",
            large_rss < TARGET_RSS_MB,
            note=f"max of {runs} runs; CPU per run (min) {min(m.cpu for m in small_runs):.2f} s ({label(SMALL)}) "
                 f"vs {min(m.cpu for m in large_runs):.2f} s ({label(large)})"),
        row("stuck-job scan", 0.0, "",
            note=f"EXPLAIN at {label(SMALL)}: {_plan_summary(plans['small'])} | "
                 f"at {label(large)}: {_plan_summary(plans['large'])}"),
        row("scenario wall time", total, "s",
            note=f"growing to {large:,} rows took {fill_large:.1f} s; "
                 f"load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores)"),
    ]


if __name__ == "__main__":
    from bench.scenarios._standalone import main

    main(run, budget=150)
