"""Shared harness of the benchmark suite (``make bench``, issue #8).

Contract between the runner (``bench/run.py``) and every scenario module
(``bench/scenarios/<name>.py``):

* A scenario module exposes ``run(ctx: Context) -> list[dict]``.
* ``ctx`` is a :class:`Context` (built by the runner, one per scenario):

  - ``workdir: pathlib.Path`` — a fresh temporary directory for this scenario
    (logs, SQLite files, redis dirs); removed by the runner afterwards.
  - ``quick: bool`` — ``BENCH_QUICK=1``: use small N for a smoke run.
  - ``database_url: str | None`` — a reachable PostgreSQL server
    (``postgres://postgres@127.0.0.1:5432/postgres``), else ``None`` (SQLite).
  - ``ceiling: float | None`` — scenario 1's raw channels-redis throughput
    (messages/s) in this run, once measured.
  - ``tokens: dict[str, str]`` — username -> API token of the users (``USERS``)
    every database from ``ctx.new_database()`` already holds.
  - ``budget`` / ``remaining()`` / ``deadline(seconds)`` — the scenario's time
    budget; the runner kills the scenario's whole process group when it is spent.
  - helpers that are cleaned up by ``ctx.close()`` (the runner calls it):
    ``ctx.new_database(label) -> url`` (migrated copy of a template, on PostgreSQL
    when reachable), ``ctx.redis() -> RedisServer``,
    ``ctx.stack(name, redis=..., env=...) -> devtools.stack.Stack`` (fresh
    database, production-like ``BENCH_ENV``), ``ctx.gateway(latency_ms=...)``
    (the sandbox gateway in a daphne of its own, ``devtools.sandbox``),
    ``ctx.mail_sink() -> MailSink`` (the mail server stand-in the receipts go
    to; ``sink.env()`` points a stack at it), ``ctx.track(popen)``.

* Each returned row is a dict with exactly these keys:

  ========= ============== ==================================================
  key       type           meaning
  ========= ============== ==================================================
  scenario  str            e.g. ``"5. Requeue scaling"``
  metric    str            e.g. ``"jobs/s, 2 workers"``
  value     float          the figure
  unit      str            e.g. ``"jobs/s"``, ``"ms"``, ``"x"``, ``"%"``
  target    str            human readable, e.g. ``"<= 1.5x"``, or ``""`` if none
  met       bool | None    ``None`` when there is no target
  note      str            may be ``""``
  ========= ============== ==================================================

  Use :func:`row` to build one.  Rows whose unit ends in ``/s`` are also shown
  as a share of scenario 1's ceiling; add ``share_of_ceiling=False`` to opt out.

* CPU: :class:`CpuMeter` names each process it measures.  The names in
  ``NOT_PRODUCT`` (the gateway and mail server stand-ins, the load clients)
  are third parties or the bench itself; everything else (web/daphne,
  workers, Redis, PostgreSQL) is the system under test, and
  :func:`product_ms` sums that share per job.

* The runner runs each scenario in a child process in a session of its own,
  bounded by the scenario's budget: on timeout it kills the whole process
  group (daphne, workers, redis-server included) and drops this run's
  ``bench_<run_id>_*`` databases.  A scenario still bounds every wait itself
  and reports what it measured rather than hanging.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devtools.databases import DatabaseTemplate, copy_database, drop_databases, is_postgres  # noqa: F401
from devtools.databases import postgres_server as devtools_postgres_server
from devtools.processes import PYTHON, ROOT, RedisServer, free_port, kill, wait_for_port
from devtools.sandbox import SandboxServer
from devtools.stack import MERCHANT_KEY, Stack

logger = logging.getLogger("bench")

RESULTS = ROOT / "bench" / "results"
KEYS = ("scenario", "metric", "value", "unit", "target", "met", "note")

# Every benchmark process runs as in production: DEBUG off (no query log),
# plain HTTP on loopback, no throttling in the way of a bulk client, and room
# in the channel layer for a run's worth of unconsumed receipt messages.
BENCH_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghijklmnop",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_HSTS_SECONDS": "0",
    "SANDBOX_ENABLED": "0",
    # The separate sandbox gateway's merchant key (devtools.sandbox serves it with this one).
    "PAYMENT_GATEWAY_KEY": MERCHANT_KEY,
    # No books are looked up here, but production settings want a name with a contact.
    "OPENLIBRARY_USER_AGENT": "books-bench/1.0 (bench@example.com)",
    "EMBEDDED_WORKERS": "0",
    "ORDER_THROTTLE_RATE": "1000000/minute",
    # Receipts are sent, to nobody: no SMTP server runs here.
    "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    "CHANNEL_LAYER_CAPACITY": "10000",
    "CHANNEL_LAYER_EXPIRY": "300",
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
}

# Gateway calls a payment makes on its first attempt, in orders.services.payment_process:
# find_by_reference (the search before any sale), sale, find.  Scenario 3 counts
# the calls in the gateway's access log and reports them beside this figure.
GATEWAY_CALLS_PER_JOB = 3

# Users (and their API tokens) every benchmark database starts with.  Each has
# an email address (``<name>@example.com``), so a paid order's receipt is
# really emailed, as for a customer, not skipped for want of an address.
USERS = [f"bench{i:02d}" for i in range(20)]

# The physical floor of one payment job (issue #12): 1 POST, 3 gateway calls,
# about 4 commits and at least 1 websocket frame cost about 10 ms of CPU.
FLOOR_MS = 10.0

# Process names in CPU figures that are not the system under test: the
# gateway and mail server stand-ins (third parties in production), and the
# bench's own load clients and observers.
NOT_PRODUCT = frozenset({"gateway", "mail", "client", "shadow"})


def product_ms(spent: dict[str, float], jobs: int) -> float:
    """Milliseconds of CPU per job of the system under test (``spent`` less ``NOT_PRODUCT``)."""
    if not jobs:
        return float("nan")
    return 1000 * sum(v for k, v in spent.items() if k not in NOT_PRODUCT) / jobs


def product_processes(spent: dict[str, float]) -> str:
    """The processes ``product_ms`` counts, by name: 'web, workers, redis, postgres'."""
    return ", ".join(k for k in spent if k not in NOT_PRODUCT)


def row(scenario: str, metric: str, value: float, unit: str, *, target: str = "",
        met: bool | None = None, note: str = "", **extra: Any) -> dict:
    """One result row, in the contract's shape (see the module docstring)."""
    return {"scenario": scenario, "metric": metric, "value": float(value), "unit": unit,
            "target": target, "met": met, "note": note, **extra}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Db:
    """Plain SQL on a benchmark database (PostgreSQL or SQLite), for measuring from outside.

    One PostgreSQL connection is kept and reopened on failure, so polling
    neither churns connections nor dies of one refused while the server is
    full (other tenants share its ``max_connections``).
    """

    def __init__(self, url: str):
        self.url = url
        self._conn = None

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if not is_postgres(self.url):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        for attempt in range(5):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                cur = self._conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                self.close()
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)
        return []

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.query(sql, params)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None


def as_datetime(value: Any) -> datetime:
    """A timestamp column as an aware datetime, whatever the engine returned."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def postgres_server() -> str | None:
    """A reachable PostgreSQL server for the benchmark databases, or None (SQLite)."""
    return devtools_postgres_server(os.environ.get("BENCH_POSTGRES_URL"))


def make_template(*, run_id: str, workdir: Path, server: str | None) -> tuple[str, dict[str, str]]:
    """Migrate one database with the benchmark users; every scenario database is a copy."""
    env = os.environ | BENCH_ENV | {"PAYMENT_GATEWAY_URL": "http://127.0.0.1:9/"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    template = DatabaseTemplate(workdir=workdir, server=server, env=env, users=USERS, password=None,
                                prefix=f"bench_{run_id}").create()
    db = Db(template.url)
    # Receipts go to an address, as a customer's do (see USERS).
    db.execute("UPDATE auth_user SET email = username || '@example.com' WHERE email = ''")
    db.close()
    # The Celery polling peer keeps its task results with django-celery-results:
    # its tables live in every copy, unused by the other stacks.
    subprocess.run([PYTHON, "manage.py", "migrate", "django_celery_results", "-v0"], cwd=ROOT, check=True,
                   timeout=300, env=env | {"DATABASE_URL": template.url,
                                           "DJANGO_SETTINGS_MODULE": "bench.celery_settings"})
    if not server:
        # A clean file to copy again (the template folded its log in; so must these writes).
        with sqlite3.connect(template.url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
    return template.url, template.tokens


@dataclass
class Context:
    """What a scenario gets: where to work, how big to be, and the run's shared parts."""

    workdir: Path
    quick: bool
    database_url: str | None  # a reachable PostgreSQL server (its ``postgres`` database), else None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    template_url: str | None = None  # migrated database with USERS; copied by new_database()
    tokens: dict[str, str] = field(default_factory=dict)  # username -> API token, valid in every copy
    ceiling: float | None = None  # scenario 1's raw layer throughput (msgs/s) in this run
    budget: float = 120.0  # seconds the runner allows this scenario before killing it
    profile: bool = False  # BENCH_PROFILE=1: attach py-spy to the workers of measured runs
    started: float = field(default_factory=time.monotonic)
    _stacks: list[Stack] = field(default_factory=list)
    _redis: list[RedisServer] = field(default_factory=list)
    _procs: list[subprocess.Popen] = field(default_factory=list)
    _sandboxes: list[SandboxServer] = field(default_factory=list)

    # --- time ---------------------------------------------------------------------

    def remaining(self) -> float:
        """Seconds left of this scenario's budget."""
        return self.budget - (time.monotonic() - self.started)

    def deadline(self, seconds: float) -> float:
        """A monotonic deadline ``seconds`` from now, never past the budget (less 10 s to clean up)."""
        return time.monotonic() + max(1.0, min(seconds, self.remaining() - 10))

    # --- parts --------------------------------------------------------------------

    def new_database(self, label: str = "db") -> str:
        """A fresh, migrated database URL holding the benchmark users; dropped at close."""
        assert self.template_url, "the runner makes the template database"
        return copy_database(self.template_url, label=label, prefix=f"bench_{self.run_id}", workdir=self.workdir)

    def redis(self, name: str = "redis") -> RedisServer:
        """A private redis-server, stopped at close."""
        server = RedisServer(self.workdir / name).start()
        self._redis.append(server)
        return server

    def stack(self, name: str, *, redis: RedisServer | None, env: dict[str, str] | None = None,
              database_url: str | None = None) -> Stack:
        """A Stack (tests/e2e/stack.py) on a fresh database with production-like settings."""
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        env = BENCH_ENV | {"DATABASE_URL": database_url or self.new_database(name)} | (env or {})
        stack = Stack(workdir, redis=redis, env=env)
        self._stacks.append(stack)
        return stack

    def gateway(self, *, latency_ms: int = 0, access_log: bool = False) -> "Gateway":
        """The sandbox gateway in a daphne of its own, on a database of its own.

        Neither the API process nor the workers serve it, so both systems under
        test call a third party that costs them nothing but the wire.  With
        ``access_log`` daphne logs every request, so calls can be counted.
        """
        workdir = self.workdir / f"gateway-{latency_ms}ms"
        server = SandboxServer(workdir, database_url=self.new_database("gateway"), access_log=access_log,
                               env={"SANDBOX_LATENCY_MS": str(latency_ms)}).start()
        self._sandboxes.append(server)
        return Gateway(server)

    def mail_sink(self) -> "MailSink":
        """The mail server stand-in (``bench/mail_sink.py``), one per scenario; ``sink.env()`` points a stack at it."""
        port = free_port()
        proc = self.track(subprocess.Popen([PYTHON, "-m", "bench.mail_sink", "--port", str(port)], cwd=ROOT,
                                           stdout=subprocess.DEVNULL))
        wait_for_port(port, timeout=30, proc=proc)
        return MailSink(proc, port)

    def track(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Kill ``proc`` at close if it is still running."""
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop everything this context started; safe to call twice."""
        for proc in self._procs:
            kill(proc)
        for sandbox in self._sandboxes:
            sandbox.stop()
        for stack in reversed(self._stacks):
            try:
                stack.close()
            except Exception:
                logger.warning("Could not close stack %s", stack.workdir, exc_info=True)
        for server in self._redis:
            server.stop()
        self._procs.clear()
        self._sandboxes.clear()
        self._stacks.clear()
        self._redis.clear()


class MailSink:
    """A running mail server stand-in: where receipts go, and how many it has received."""

    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port

    def env(self) -> dict[str, str]:
        """Settings that send a stack's email to this server over SMTP, as in production."""
        return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(self.port), "EMAIL_USE_TLS": "0", "EMAIL_HOST_USER": "",
                "EMAIL_HOST_PASSWORD": ""}

    def count(self) -> int:
        """Messages received so far (the sink's own XCOUNT verb)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            stream = sock.makefile("rwb")
            stream.readline()  # greeting
            stream.write(b"XCOUNT\r\n")
            stream.flush()
            answer = stream.readline().split()
            stream.write(b"QUIT\r\n")
            stream.flush()
        return int(answer[1])

    def wait_for(self, total: int, *, timeout: float) -> int:
        """Wait until ``total`` messages in all have arrived, or ``timeout``; the count then."""
        deadline = time.monotonic() + max(0.0, timeout)
        while (got := self.count()) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        return got


class Gateway:
    """A running sandbox gateway: its URL, and a reset of its ledger between runs."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.gateway_url()
        self.db = Db(server.database_url)

    def calls(self) -> int:
        """Gateway requests served so far."""
        return self.server.calls("gateway")

    def reset(self) -> None:
        # Order ids restart in every fresh database; an old sale for the same
        # id would turn the next run's sale into a search hit.
        self.db.execute("DELETE FROM sandbox_sandboxtransaction")

    def sales(self) -> int:
        return self.db.query("SELECT count(*) FROM sandbox_sandboxtransaction")[0][0]


def flush_redis(server: RedisServer) -> None:
    """Empty a Redis between measured runs, so no run inherits another's queues."""
    server.flush()


# --- profiling --------------------------------------------------------------------

PY_SPY = Path(PYTHON).parent / "py-spy"
# A profiled run perturbs what it measures, so it reports apart from the real one.
PROFILED = RESULTS / "profiled"
PROFILES = PROFILED / "profiles"


class Profiler:
    """py-spy on some processes for the length of a ``with`` block, when ``ctx.profile`` is on.

    Samples only threads holding the GIL (``--gil``): Python's CPU time, not
    threads waiting on sockets.  ``summaries`` maps each process to
    :func:`summarize_profile`'s line once the block ends.
    """

    def __init__(self, ctx: "Context", label: str, procs: dict[str, subprocess.Popen]):
        self.ctx, self.label, self.procs = ctx, label, procs
        self.spies: list[tuple[str, subprocess.Popen, Path]] = []
        self.summaries: dict[str, str] = {}

    def __enter__(self) -> "Profiler":
        if self.ctx.profile:
            for name, proc in self.procs.items():
                path = PROFILES / f"{self.label}-{name}.txt"
                spy = start_profile(proc.pid, path, seconds=max(5, self.ctx.remaining()))
                if spy:
                    self.spies.append((name, spy, path))
            time.sleep(1)  # attached before the clock starts
        return self

    def __exit__(self, *exc) -> None:
        for name, spy, path in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            try:
                spy.wait(20)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            self.summaries[name] = summarize_profile(path)
            logger.info("profile %s %s: %s", self.label, name, self.summaries[name])

    def note(self) -> str:
        return "; ".join(f"py-spy {name}: {text}" for name, text in self.summaries.items())


def start_profile(pid: int, out: Path, *, seconds: float, rate: int = 100) -> subprocess.Popen | None:
    """Sample a running process with py-spy into collapsed stacks (``out``)."""
    if not PY_SPY.exists():
        logger.warning("py-spy is not installed; no profile")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(PY_SPY), "record", "--format", "raw", "--rate", str(rate), "--gil",
         "--duration", str(max(1, int(seconds))), "--pid", str(pid), "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
PRODUCT_PACKAGES = ("jobs/", "orders/", "consumers/", "integrations/", "project/", "sandbox/", "books/")


def summarize_profile(path: Path, *, top: int = 6) -> str:
    """Where a py-spy profile (collapsed stacks, idle threads left out) spent its samples.

    Two views: the innermost frames (own time), and our product's functions
    inclusively (each counted once per sample it is on the stack), which says
    which step of ours the CPU is paid for.
    """
    if not path.exists() or path.stat().st_size == 0:
        return "no samples"
    own: Counter[str] = Counter()
    product: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_parse(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[_label(frames[-1])] += n
        for name in {_label(f) for f in frames if f[1].startswith(PRODUCT_PACKAGES)}:
            product[name] += n
    if not total:
        return "no samples"
    busy = ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in own.most_common(top))
    ours = ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in product.most_common(2 * top))
    return f"{total} samples; own time: {busy}; inclusive, our functions: {ours or 'none'}"


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    return (match["func"], match["file"]) if match else (frame.strip()[:60], "")


def _label(frame: tuple[str, str]) -> str:
    return f"{frame[0]} ({frame[1]})" if frame[1] else frame[0]


# --- the machine ------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    try:
        redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.split("v=", 1)[1].split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        redis_version = "unknown"
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(ram_gib, 1),
        "python": platform.python_version(),
        "redis": redis_version,
        "platform": platform.platform(),
        "load_1min_at_start": round(load, 2),
    }


# --- CPU accounting -----------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_backends(database: str) -> list[int]:
    """PIDs of the PostgreSQL backends serving ``database`` (their title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {database} " in title:
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds spent by named processes between ``start()`` and ``stop()``.

    PostgreSQL backends are found by the database they serve, so the figure is
    this run's share of the server even with other databases busy beside it.
    Backends that come and go within the window are missed (the pools keep
    theirs open, so few are); CPU of backends that closed is lost with them.
    """

    def __init__(self, processes: dict[str, list[int]], database_url: str | None = None):
        self.processes = processes
        self.database = database_url.rsplit("/", 1)[1] if database_url and is_postgres(database_url) else None
        self.before: dict[str, float] = {}
        self.seen_pg: dict[int, float] = {}

    def _sample(self) -> dict[str, float]:
        return {name: sum(_cpu_of(pid) for pid in pids) for name, pids in self.processes.items()}

    def start(self) -> None:
        # Backends born later (a pool growing) count from zero at stop().
        self.seen_pg = {pid: _cpu_of(pid) for pid in _postgres_backends(self.database)} if self.database else {}
        self.before = self._sample()
        self.machine_before = _machine_cpu()
        self.started = time.monotonic()

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        """CPU seconds by name since start(), plus ``extra`` (what processes reported themselves)."""
        after = self._sample()
        spent = (extra or {}) | {name: after[name] - self.before.get(name, 0.0) for name in after}
        if self.database:
            backends = _postgres_backends(self.database)
            spent["postgres"] = sum(_cpu_of(pid) - self.seen_pg.get(pid, 0.0) for pid in backends)
        busy, total = (a - b for a, b in zip(_machine_cpu(), self.machine_before))
        self.wall = time.monotonic() - self.started
        # Share of all cores busy, whoever kept them busy (other tenants too).
        self.machine_busy = busy / total if total else float("nan")
        self.ours_busy = sum(spent.values()) / (self.wall * (os.cpu_count() or 1)) if self.wall else float("nan")
        return spent

    def busy_note(self) -> str:
        return (f"cores busy {100 * self.machine_busy:.0f}% during the run "
                f"({100 * self.ours_busy:.0f}% by the processes above)")


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]) - idle, sum(values[:8])


def cpu_note(spent: dict[str, float], jobs: int) -> str:
    """'CPU per job: web 4.1 ms, ...' for a results note."""
    if not jobs:
        return ""
    parts = [f"{name} {1000 * seconds / jobs:.1f}" for name, seconds in spent.items()]
    return f"CPU ms per job: {', '.join(parts)} (total {1000 * sum(spent.values()) / jobs:.1f})"
