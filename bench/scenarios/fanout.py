"""Scenario 6: websocket fan-out (issue #8).

1,000 concurrent token-authenticated websocket clients on one daphne process,
each with its own payment in flight.  Reports the share of events delivered
(target 100%), event latency (target p99 under 250 ms, issue #12) and
daphne's memory per connection.

Processes, all real and on loopback: redis-server, the daphne under test, the
sandbox gateway in a daphne of its own (a real gateway is a third party, so
its load must not land on the process being measured), the two worker pools
of the Procfile (the ``default`` one runs each paid order's receipt job and
emails it to the mail server stand-in, ``bench/mail_sink.py``), one asyncio
client process holding every websocket (``python -m bench.scenarios.fanout
--client <config>``), and a shadow (``--shadow <config>``, below).

Once every client is connected, every user pays at once: the orders are made
by ``orders.services.order_create``, the service ``POST /api/orders/`` calls,
so the order, its job, the "queued" event and the job message are exactly an
API order's, while the daphne under test serves websockets only (a thousand
POSTs in a burst measure the API, not the fan-out).

Event latency is the time from the job row's ``updated_at`` (written just
before the commit that publishes the event) to the frame's arrival at the
client; every process reads the same clock.

What "delivered" is measured against: the shadow joins every client's user
group on the layer group events travel on (the ``events`` alias when the
product has one, else ``default``) through Channels' own API, and records
every ``job.update`` published to it.  A client is owed exactly what was
published to its group, whatever the product holds back or coalesces (how
many events a job sends may vary from run to run and job to job), and every
job's final event.  The warm-up order before the clients connect only warms
the code paths up and says which job kinds an order makes, so a client
knows when its order is settled.

Run alone: ``.venv/bin/python -m bench.scenarios.fanout [--quick] [--sqlite]``
(``BENCH_PROFILE=1`` samples daphne with py-spy, ``BENCH_KEEP=1`` keeps logs).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import PYTHON, ROOT, Context, CpuMeter, Db, as_datetime, cpu_note, kill, percentile, product_ms, \
    product_processes, row as _row, start_profile, summarize_profile

SCENARIO = "6. Websocket fan-out"

CLIENTS_FULL = 1_000
CLIENTS_QUICK = 100
CONNECT_CONCURRENCY = 50  # at most daphne's listen backlog (50), so no SYN is dropped and retried
CLIENT_DEADLINE = 150.0  # from the first order to the last event
SETTLE_GRACE = 5.0  # how long a client with all its jobs final waits for a straggler
FINAL = ("ok", "failed")
# What the product sends as soon as its row commits (jobs.events); a running job's updates are held back.
AT_ONCE = ("pending", "retrying", "ok", "failed")
TARGET_P99_MS = 250.0
NOFILE = 65_536

_CREATE_USERS = r"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
User = get_user_model()
# Bulk, with unusable passwords: hashing a thousand passwords takes minutes.
users = User.objects.bulk_create(
    [User(username=f"fanout{i}", email=f"fanout{i}@example.com", password="!") for i in range(COUNT)])
tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
print(json.dumps([[t.user_id, t.key] for t in tokens]))
"""

# Every connected user pays at once, through the service the API view calls:
# the order, its job, the "queued" event and the job message, as after a POST.
# Called from an event loop, as daphne calls views, so the sends after commit
# reuse that loop's Redis connections instead of opening a loop per send.
_CREATE_ORDERS = r"""
import asyncio, json, sys, time
from decimal import Decimal
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from orders.services import order_create
ids = json.loads(sys.stdin.read())
users = get_user_model().objects.in_bulk(ids)
out = {}
def create(i, user_id):
    order = order_create(user=users[user_id], amount=Decimal(f"{10 + i % 90}.00"), nonce="fake-valid-nonce")
    out[user_id] = [order.pk, order.job_id]
async def main():
    # Several at a time, as daphne runs concurrent requests in threads of their own.
    gate = asyncio.Semaphore(8)
    async def one(i, user_id):
        async with gate:
            await sync_to_async(create, thread_sensitive=False)(i, user_id)
    await asyncio.gather(*(one(i, user_id) for i, user_id in enumerate(ids)))
started = time.time()
asyncio.run(main())
print(json.dumps({"started": started, "finished": time.time(), "orders": out}))
"""


def row(metric: str, value: float, unit: str, target: str = "", met: bool | None = None, note: str = "",
        **extra: Any) -> dict:
    return _row(SCENARIO, metric, value, unit, target=target, met=met, note=note, **extra)


def _raise_nofile() -> None:
    """Lift this process's open-file limit (inherited by its children) up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the client process -------------------------------------------------------


async def _http_post(port: int, path: str, token: str, body: dict) -> tuple[int, dict]:
    """One POST on a fresh connection: enough HTTP/1.1 for daphne, and no thread per request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        payload = out
    try:
        return status, json.loads(payload or b"{}")
    except ValueError:
        return status, {"raw": payload[:200].decode(errors="replace")}


def _event(frame: str, received: float) -> list | None:
    """A job frame as [job id, kind, status, progress, attempts, subject type, subject id, updated_at (epoch),
    received, updated_at (as sent)]."""
    message = json.loads(frame)
    if message.get("type") != "job":
        return None
    job = message["job"]
    subject = job.get("subject") or {}
    updated = datetime.fromisoformat(job["updated_at"]).timestamp() if job.get("updated_at") else None
    return [job["id"], job["kind"], job["status"], job["progress"], job["attempts"], subject.get("type"),
            subject.get("id"), updated, received, job.get("updated_at")]


def _settled(events: list[list], kinds: set[str]) -> bool:
    """A final event for every job seen, and for every expected kind."""
    finals = {e[0] for e in events if e[2] in FINAL}
    return bool(events) and {e[0] for e in events} <= finals and kinds <= {e[1] for e in events if e[2] in FINAL}


class _Client:
    """One user's websocket: snapshot, one order, then every event until its jobs are final."""

    def __init__(self, index: int, user_id: int, token: str):
        self.index, self.user_id, self.token = index, user_id, token
        self.error = ""
        self.stopped: float | None = None
        self.complete = False
        self.connect_s: float | None = None
        self.snapshot_jobs: list[dict] = []
        self.events: list[list] = []

    def result(self) -> dict:
        return {"user": self.user_id, "error": self.error, "connect_s": self.connect_s,
                "snapshot_subjects": [(j.get("subject") or {}).get("id") for j in self.snapshot_jobs],
                "events": self.events, "stopped": self.stopped, "complete": self.complete}

    async def run(self, cfg: dict, gate: asyncio.Semaphore, go: asyncio.Event, on_connected,
                  stop_at: list[float], kinds: set[str]) -> None:
        from websockets.asyncio.client import connect

        try:
            async with gate:
                started = time.time()
                ws = await connect(cfg["ws_url"], additional_headers={"Authorization": f"Token {self.token}"},
                                   ping_interval=None, open_timeout=30, proxy=None)
                snapshot = json.loads(await asyncio.wait_for(ws.recv(), 30))
                self.connect_s = time.time() - started
                self.snapshot_jobs = snapshot.get("jobs", [])
        except Exception as exc:  # a refused or failed connection is a result, not a crash
            self.error = f"connect: {exc.__class__.__name__}: {exc}"
            on_connected()
            return
        on_connected()
        settled_at: float | None = None
        try:
            while True:
                until = stop_at[0] if settled_at is None else min(stop_at[0], settled_at + SETTLE_GRACE)
                timeout = (until - time.time()) if go.is_set() else 3600.0
                if timeout <= 0:
                    # Events of one order come from more than one process (a
                    # payment's worker queues the receipt, another runs it), so
                    # a settled client waits SETTLE_GRACE for stragglers.  A
                    # client stopped by the deadline instead is "cut".
                    self.complete = settled_at is not None and settled_at + SETTLE_GRACE <= stop_at[0]
                    break
                try:
                    frame = await asyncio.wait_for(ws.recv(), timeout)
                except TimeoutError:
                    continue  # re-read the deadline: it is set when the orders go out
                event = _event(frame, time.time())
                if event is None:
                    continue
                self.events.append(event)
                if settled_at is None and _settled(self.events, kinds):
                    settled_at = time.time()
        except Exception as exc:
            self.error = f"run: {exc.__class__.__name__}: {exc}"
        finally:
            self.stopped = time.time()
            await ws.close()


async def _warm_up(cfg: dict, token: str) -> dict[str, int]:
    """One order on an idle server: warms every code path up; {job kind: frames seen} of the order.

    Warming before the memory baseline keeps lazy imports and first-use
    caches out of the per-connection figure.  The kinds tell a client when
    its order is settled; the counts are for the notes only, never owed.
    """
    from websockets.asyncio.client import connect

    async with connect(cfg["ws_url"], additional_headers={"Authorization": f"Token {token}"},
                       ping_interval=None, proxy=None) as ws:
        await ws.recv()
        status, _ = await _http_post(cfg["port"], "/api/orders/", token, {"amount": "1.00", "nonce": "fake-valid-nonce"})
        if status != 202:
            raise RuntimeError(f"warm-up order answered {status}")
        events: list[list] = []
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                # Quiet for 1.5 s with every job final: follow-up jobs (the
                # receipt) are queued in the commit that finishes the payment.
                frame = await asyncio.wait_for(ws.recv(), 1.5)
            except TimeoutError:
                if _settled(events, set()):
                    break
                continue
            event = _event(frame, time.time())
            if event is not None:
                events.append(event)
    if not _settled(events, set()):
        raise RuntimeError(f"the warm-up order never settled: {events}")
    per_job: dict[int, list] = {}
    for e in events:
        per_job.setdefault(e[0], []).append(e)
    counts: dict[str, int] = {}
    for job_events in per_job.values():
        kind = job_events[0][1]
        counts[kind] = max(counts.get(kind, 0), len(job_events))
    return counts


async def _client_main(cfg: dict) -> dict:
    """Warm up and calibrate, connect everyone, say so, then collect events until all settle."""
    pid = cfg["daphne_pid"]
    users = cfg["users"]
    warm_user, users = users[-1], users[:-1]
    warm = await _warm_up(cfg, warm_user[1])
    await asyncio.sleep(1)
    rss_before, cpu_before = _rss_kb(pid), _cpu_seconds(pid)

    clients = [_Client(i, uid, token) for i, (uid, token) in enumerate(users)]
    gate, go, all_connected = asyncio.Semaphore(cfg["connect_concurrency"]), asyncio.Event(), asyncio.Event()
    pending = len(clients)

    def on_connected() -> None:
        nonlocal pending
        pending -= 1
        if pending == 0:
            all_connected.set()

    stop_at = [0.0]
    connect_started = time.time()
    tasks = [asyncio.create_task(c.run(cfg, gate, go, on_connected, stop_at, set(warm))) for c in clients]
    await asyncio.wait_for(all_connected.wait(), 120)
    connect_seconds = time.time() - connect_started
    await asyncio.sleep(2)  # let daphne settle before reading memory
    rss_connected = _rss_kb(pid)

    peak, lags = {"rss": rss_connected}, []

    async def watch() -> None:
        # Daphne's peak memory, and this loop's own lag: a late client would
        # show up as event latency that is none of the server's doing.
        while True:
            peak["rss"] = max(peak["rss"], _rss_kb(pid))
            before = time.perf_counter()
            await asyncio.sleep(0.05)
            lags.append((time.perf_counter() - before - 0.05) * 1000)

    watcher = asyncio.create_task(watch())
    cpu_go = _cpu_seconds(pid)
    meter = CpuMeter(cfg["cpu_pids"] | {"client": [os.getpid()]}, cfg["database_url"])
    meter.start()
    stop_at[0] = time.time() + cfg["deadline"]
    go.set()
    # The parent places the orders once it sees this file.
    ready = Path(cfg["ready_path"])
    ready.with_suffix(".tmp").write_text(json.dumps([c.user_id for c in clients if c.connect_s is not None]))
    ready.with_suffix(".tmp").replace(ready)  # whole or absent, never half-written
    await asyncio.gather(*tasks)
    finished = time.time()
    spent = meter.stop()
    watcher.cancel()
    return {
        "warm_up": warm,
        "clients": [c.result() for c in clients],
        "connected": sum(1 for c in clients if c.connect_s is not None),
        "connect_seconds": connect_seconds,
        "rss_before_kb": rss_before,
        "rss_connected_kb": rss_connected,
        "rss_peak_kb": peak["rss"],
        "cpu_connect": cpu_go - cpu_before,
        "cpu_run": _cpu_seconds(pid) - cpu_go,
        "go": stop_at[0] - cfg["deadline"],
        "finished": finished,
        "client_lag_p99_ms": percentile(lags, 99),
        "cpu_by_process": spent,
    }


def client_entry(config_path: str) -> None:
    _raise_nofile()
    cfg = json.loads(Path(config_path).read_text())
    result = asyncio.run(_client_main(cfg))
    Path(cfg["result_path"]).write_text(json.dumps(result))


# --- the shadow: what was published -----------------------------------------------


async def _shadow_main(cfg: dict) -> dict:
    """Join every client's group on the events layer; record each job event published until stdin closes."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    django.setup()
    from channels.layers import get_channel_layer
    from django.conf import settings

    from project.names import JOB_UPDATE, user_group

    alias = "events" if "events" in settings.CHANNEL_LAYERS else "default"
    layer = get_channel_layer(alias)
    channel = await layer.new_channel()
    groups = {user_group(uid): uid for uid in cfg["user_ids"]}
    for group in groups:
        await layer.group_add(group, channel)
    events: dict[int, list] = {}
    other: dict[str, int] = {}

    async def receive() -> None:
        while True:
            message = await layer.receive(channel)
            now = time.time()
            job = message.get("job") if message.get("type") == JOB_UPDATE else None
            if not isinstance(job, dict):
                other[str(message.get("type"))] = other.get(str(message.get("type")), 0) + 1
                continue
            # A group message does not name its group: the job's user does (user_group(job.user_id)).
            events.setdefault(job.get("id"), []).append(
                [job.get("id"), job.get("status"), job.get("progress"), job.get("updated_at"), now])

    receiver = asyncio.create_task(receive())
    ready = Path(cfg["ready_path"])
    ready.with_suffix(".tmp").write_text(json.dumps({"alias": alias, "backend": type(layer).__name__}))
    ready.with_suffix(".tmp").replace(ready)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # the parent closes it when done
    receiver.cancel()
    await asyncio.gather(receiver, return_exceptions=True)
    for group in groups:
        try:
            await layer.group_discard(group, channel)
        except Exception:
            pass
    return {"alias": alias, "backend": type(layer).__name__, "events": events, "other": other}


def shadow_entry(config_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    result = asyncio.run(_shadow_main(cfg))
    Path(cfg["result_path"]).write_text(json.dumps(result))


# --- the scenario ---------------------------------------------------------------


def run(ctx: Context) -> list[dict]:
    """Start the stack, connect every client, have every user pay at once, check what arrived."""
    _raise_nofile()  # daphne and the client inherit it: a thousand sockets each
    n = int(os.environ.get("BENCH_FANOUT_CLIENTS", CLIENTS_QUICK if ctx.quick else CLIENTS_FULL))  # for exploring
    started = time.monotonic()
    load_before = os.getloadavg()[0]

    redis = ctx.redis("redis-fanout")
    sink = ctx.mail_sink()  # receipts are emailed over SMTP, to the stand-in
    stack = ctx.stack("fanout", redis=redis, env=sink.env() | {
        "DB_POOL_MAX_SIZE": "10",  # daphne and the order maker; runworker raises its own to fit
    })

    def create_users() -> list[list]:
        out = stack.manage("shell", "-c", _CREATE_USERS.replace("COUNT", str(n + 1))).stdout
        return json.loads(out.strip().splitlines()[-1])

    # Start-up in parallel: each process spends seconds importing Django.
    with ThreadPoolExecutor(4) as pool:
        gateway_f, web_f, users_f = pool.submit(ctx.gateway), pool.submit(stack.start_web), pool.submit(create_users)
        gateway = gateway_f.result()
        gateway_env = {"PAYMENT_GATEWAY_URL": gateway.url}
        worker_fs = [  # the two pools of the Procfile (runworker sizes its own DB pool)
            pool.submit(stack.start_worker, "--only-channels", "payments", "--concurrency", "20",
                        env=gateway_env, name="payments"),
            pool.submit(stack.start_worker, "--exclude-channels", "payments", env=gateway_env, name="default"),
        ]
        web, users = web_f.result(), users_f.result()
        workers = [f.result() for f in worker_fs]
    setup_seconds = time.monotonic() - started

    # The shadow joins the clients' groups (not the warm-up user's) before any order is placed.
    shadow_cfg = {"user_ids": [uid for uid, _ in users[:-1]], "ready_path": str(ctx.workdir / "shadow-ready.json"),
                  "result_path": str(ctx.workdir / "shadow-result.json")}
    (ctx.workdir / "shadow-config.json").write_text(json.dumps(shadow_cfg))
    shadow_log = open(ctx.workdir / "shadow.log", "wb")
    shadow = ctx.track(subprocess.Popen([PYTHON, "-m", "bench.scenarios.fanout", "--shadow",
                                         str(ctx.workdir / "shadow-config.json")], cwd=ROOT, env=stack.env,
                                        stdin=subprocess.PIPE, stdout=shadow_log, stderr=subprocess.STDOUT))

    # Warm-up and connecting take ~20 s; keep ~20 s for the analysis and clean-up.
    deadline = max(20.0, min(CLIENT_DEADLINE, ctx.remaining() - 35))
    cfg = {
        "ws_url": stack.ws_url(), "port": stack.port, "daphne_pid": web.pid, "users": users,
        "deadline": deadline, "connect_concurrency": CONNECT_CONCURRENCY,
        "result_path": str(ctx.workdir / "client-result.json"), "ready_path": str(ctx.workdir / "client-ready.json"),
        "database_url": stack.env["DATABASE_URL"],
        "cpu_pids": {"daphne": [web.pid], "workers": [w.pid for w in workers],
                     "gateway": [gateway.server.proc.pid], "mail": [sink.proc.pid], "shadow": [shadow.pid],
                     "redis": [redis.proc.pid] if redis.proc else []},
    }
    (ctx.workdir / "client-config.json").write_text(json.dumps(cfg))
    spy = start_profile(web.pid, ctx.workdir / "daphne.prof", seconds=deadline + 40) if ctx.profile else None
    if spy is not None:
        ctx.track(spy)
    with open(ctx.workdir / "client.log", "wb") as log:
        client = ctx.track(subprocess.Popen([PYTHON, "-m", "bench.scenarios.fanout", "--client",
                                             str(ctx.workdir / "client-config.json")],
                                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        ready = Path(cfg["ready_path"])
        wait_until = time.monotonic() + 90
        while not ready.exists() and client.poll() is None and time.monotonic() < wait_until:
            time.sleep(0.1)
        created: dict = {}
        shadow_ready = Path(shadow_cfg["ready_path"])
        while ready.exists() and not shadow_ready.exists() and shadow.poll() is None and time.monotonic() < wait_until:
            time.sleep(0.1)
        if ready.exists() and not shadow_ready.exists():
            kill(client)
            raise RuntimeError(f"the shadow never joined the groups:\n"
                               f"{(ctx.workdir / 'shadow.log').read_text(errors='replace')[-3000:]}")
        if ready.exists():
            creator = subprocess.run([PYTHON, "manage.py", "shell", "-c", _CREATE_ORDERS], cwd=ROOT, env=stack.env,
                                     input=ready.read_text(), capture_output=True, text=True, timeout=deadline)
            if creator.returncode != 0:
                kill(client)
                raise RuntimeError(f"placing the orders failed:\n{creator.stderr[-3000:]}")
            created = json.loads(creator.stdout.strip().splitlines()[-1])
        try:
            client.wait(max(5.0, min(deadline + 30, ctx.remaining() - 10)))
        except subprocess.TimeoutExpired:
            kill(client)
    published: dict = {}
    try:
        assert shadow.stdin is not None
        shadow.stdin.close()  # the clients are done: so is the shadow
        shadow.wait(20)
        published = json.loads(Path(shadow_cfg["result_path"]).read_text())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        kill(shadow)
    finally:
        shadow_log.close()
    if spy is not None and spy.poll() is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT, not on SIGTERM
        try:
            spy.wait(15)
        except subprocess.TimeoutExpired:
            kill(spy)
    if client.returncode != 0 or not created:
        raise RuntimeError(f"the client exited {client.returncode}:\n"
                           f"{(ctx.workdir / 'client.log').read_text(errors='replace')[-3000:]}")
    result = json.loads(Path(cfg["result_path"]).read_text())
    jobs = _jobs(stack.env["DATABASE_URL"])
    profile = summarize_profile(ctx.workdir / "daphne.prof") if spy is not None else ""
    if not published:
        raise RuntimeError(f"the shadow left no record of what was published:\n"
                           f"{(ctx.workdir / 'shadow.log').read_text(errors='replace')[-3000:]}")
    return _analyse(result, created, jobs, published, n=n, database=stack.env["DATABASE_URL"], quick=ctx.quick,
                    daphne_log=stack.log_of(web), setup_seconds=setup_seconds, profile=profile,
                    total_seconds=time.monotonic() - started, load_before=load_before, deadline=deadline)


def _jobs(url: str) -> list[tuple]:
    """Every job row: the truth the events are checked against.

    One plain connection, asked again a few times: PostgreSQL may be out of
    connections for a moment when other work shares the server.
    """
    for attempt in range(5):
        try:
            return Db(url).query("SELECT id, user_id, kind, status, attempts, updated_at, created_at FROM jobs_job")
        except Exception:
            if attempt == 4:
                raise
            time.sleep(2)
    return []


def _analyse(result: dict, created: dict, jobs: list[tuple], published: dict, *, n: int, database: str, quick: bool,
             daphne_log: str, setup_seconds: float, profile: str, total_seconds: float,
             load_before: float, deadline: float) -> list[dict]:
    warm: dict[str, int] = result["warm_up"]
    clients = result["clients"]
    orders: dict[int, list[int]] = {int(user): ids for user, ids in created["orders"].items()}
    jobs_of: dict[int, list[tuple]] = {}
    for job_id, user, kind, status, attempts, updated, made in jobs:
        jobs_of.setdefault(user, []).append((job_id, kind, status, attempts, as_datetime(updated).timestamp(),
                                             as_datetime(made).timestamp()))
    # What the shadow saw published, by job: [job id, status, progress, updated_at as sent, when].
    shadow: dict[int, list[list]] = {int(job_id): events for job_id, events in published["events"].items()}
    expected = delivered = extra = foreign = unfinished = late = 0
    finals_expected = finals_got = completed = frames = 0
    frames_by: dict[str, int] = {}
    event_latency: list[float] = []
    at_once_latency: list[float] = []  # queued, retrying and final: sent as soon as their row commits
    final_latency: list[float] = []
    last_final = 0.0
    mine: list[tuple[dict, int | None, dict, dict]] = []
    for c in clients:
        order_id = orders.get(c["user"], [None])[0]
        own = {job_id: (kind, status, attempts, updated, made)
               for job_id, kind, status, attempts, updated, made in jobs_of.get(c["user"], [])}
        got: dict[int, list] = {}
        for event in c["events"]:
            job_id, kind, status, _progress, _attempts, s_type, s_id, updated, received, _sent = event
            if job_id not in own or s_type != "orders.order" or s_id != str(order_id):
                foreign += 1  # another user's job, or another order's: must never happen
                continue
            got.setdefault(job_id, []).append(event)
            frames += 1
            frames_by[f"{kind} {status}"] = frames_by.get(f"{kind} {status}", 0) + 1
            if updated is not None:
                event_latency.append((received - updated) * 1000)
                if status in AT_ONCE:
                    at_once_latency.append((received - updated) * 1000)
            if kind == "payment" and status in FINAL:
                completed += 1
                final_latency.append((received - own[job_id][4]) * 1000)
                last_final = max(last_final, received)
        foreign += sum(1 for subject in c["snapshot_subjects"] if subject is not None)  # new users own nothing yet
        mine.append((c, order_id, own, got))

    # A client cut off by the deadline is owed only what was published (or
    # made final) long enough before it stopped to have arrived at the slowest
    # latency seen: anything later may be late rather than lost, and a cut
    # run cannot tell which.
    margin = max(SETTLE_GRACE, max(event_latency, default=0.0) / 1000)
    for c, order_id, own, got in mine:
        if c["connect_s"] is None or order_id is None:
            continue
        stopped = c["stopped"]
        cut_client = not c["complete"] and stopped is not None
        for job_id, (kind, status, attempts, updated, _made) in own.items():
            received = Counter((e[0], e[2], e[3], e[9]) for e in got.get(job_id, []))
            sent = shadow.get(job_id, [])
            owed = Counter((e[0], e[1], e[2], e[3]) for e in sent if not (cut_client and e[4] > stopped - margin))
            late += len(sent) - sum(owed.values())
            matched = sum((received & owed).values())
            expected += sum(owed.values())
            delivered += matched
            # A frame the shadow never saw published (it should not happen; a
            # shadow that missed something shows up here, not as a loss).
            extra += sum((received - Counter((e[0], e[1], e[2], e[3]) for e in sent)).values())
            if status not in FINAL or (cut_client and updated > stopped - margin):
                unfinished += 1
                continue
            finals_expected += 1
            finals_got += any(e[2] == status for e in got.get(job_id, []))

    connected = result["connected"]
    placed = len(orders)
    errors = sorted({c["error"][:100] for c in clients if c["error"]})
    share = 100.0 * delivered / expected if expected else 0.0
    finals_share = 100.0 * finals_got / finals_expected if finals_expected else 0.0
    p50, p99 = percentile(event_latency, 50), percentile(event_latency, 99)
    now_p50, now_p99 = percentile(at_once_latency, 50), percentile(at_once_latency, 99)
    per_conn_kb = (result["rss_connected_kb"] - result["rss_before_kb"]) / max(1, connected)
    connect_ms = [c["connect_s"] * 1000 for c in clients if c["connect_s"] is not None]
    over_capacity = daphne_log.count("over capacity")
    size = f"{n:,} clients" + (" (quick run, not 1,000)" if quick else "")
    all_there = connected == n and placed == n and unfinished == 0 and foreign == 0
    engine = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    warm_note = ", ".join(f"{count} {kind}" for kind, count in sorted(warm.items()))
    span = max(1e-9, (last_final or result["finished"]) - created["started"])
    cut_note = (f"CUT BY THE DEADLINE ({deadline:.0f} s after the first order): {unfinished} jobs not final "
                f"{margin:.1f} s (the slowest latency seen) before it, and {late} events published after that, "
                f"are left out" if unfinished or late else "every job final before the deadline")
    placing = created["finished"] - created["started"]
    other = published.get("other") or {}
    spent = result["cpu_by_process"]
    jobs_done = max(1, completed)
    return [
        row("events delivered", share, "%", "100%", share == 100.0 and finals_share == 100.0 and all_there,
            note=f"{delivered:,}/{expected:,} events published to the clients' groups (seen by a shadow member of "
                 f"every group on the '{published.get('alias')}' layer, {published.get('backend')}) reached their "
                 f"socket; {finals_got:,}/{finals_expected:,} final events; {size} on one daphne; {connected}/{n} "
                 f"connected, {placed}/{n} orders placed; {cut_note}; {foreign} foreign events, {extra} frames the "
                 f"shadow never saw published"
                 + (f"; other layer messages: {other}" if other else "")
                 + (f", {over_capacity} 'over capacity' in the daphne log" if over_capacity else "")
                 + (f"; errors: {' | '.join(errors[:3])}" if errors else "")),
        row("final events delivered", finals_share, "%",
            note=f"{finals_got:,}/{finals_expected:,} final (ok/failed) events of the clients' jobs"),
        row("event latency p99", now_p99, "ms", f"< {TARGET_P99_MS:.0f} ms", now_p99 < TARGET_P99_MS,
            note=f"job row updated_at -> frame at the client, for the {len(at_once_latency):,} events the product "
                 f"sends as soon as their row commits (queued, retrying, ok, failed); p50 {now_p50:.0f} ms, max "
                 f"{max(at_once_latency, default=float('nan')):.0f} ms; client loop lag p99 "
                 f"{result['client_lag_p99_ms']:.0f} ms" + (f"; daphne profile: {profile}" if profile else "")),
        row("event latency p50", now_p50, "ms"),
        row("event latency p99, every event", p99, "ms",
            note=f"all {len(event_latency):,} events, a running job's updates included: those are held back "
                 f"JOBS_EVENT_HOLD (0.25 s) on purpose, so a state that would only flash past is never sent; "
                 f"p50 {p50:.0f} ms"),
        row("websocket frames per order", frames / max(1, placed), "frames",
            note=f"every job frame of the order and its receipt, by kind and status: "
                 + ", ".join(f"{k} {v / max(1, placed):.2f}" for k, v in sorted(frames_by.items()))
                 + f"; the warm-up order on an idle server sent {warm_note}"),
        row("order queued -> payment final p99", percentile(final_latency, 99), "ms",
            note=f"payment job created -> its final frame at the client, queueing behind the workers included: "
                 f"all {placed:,} orders placed at once (in {placing:.1f} s, through orders.services.order_create "
                 f"as the API does, so the daphne under test serves websockets only); p50 "
                 f"{percentile(final_latency, 50):.0f} ms"),
        row("orders completed per second", completed / span, "orders/s",
            note=f"{completed:,} of {placed:,} payments final at their clients, from the first order placed to "
                 f"the last final event in {span:.1f} s (about {frames / span:.0f} events/s fanned out)",
            share_of_ceiling=False),
        row("daphne memory per connection", per_conn_kb, "KiB",
            note=f"(VmRSS with {connected:,} connected - VmRSS after warm-up) / {connected:,}: "
                 f"{result['rss_before_kb'] / 1024:.0f} -> {result['rss_connected_kb'] / 1024:.0f} MB; "
                 f"peak while events flowed {result['rss_peak_kb'] / 1024:.0f} MB"),
        row("connect + snapshot p99", percentile(connect_ms, 99), "ms",
            note=f"{CONNECT_CONCURRENCY} handshakes at a time, all {connected:,} in {result['connect_seconds']:.1f} s; "
                 f"daphne CPU {result['cpu_connect']:.1f} s to connect them, {result['cpu_run']:.1f} s while "
                 f"the orders ran"),
        row("product CPU per order, receipt included", product_ms(spent, jobs_done), "ms",
            note=f"{product_processes(spent)} per completed order; every process: "
                 + cpu_note(spent, jobs_done).replace("per job", "per completed order")
                 + " (the gateway and mail server stand-ins, the client and the shadow are not the product)"
                 + ("" if completed == placed else "; orders cut by the deadline still cost some of it")
                 + "; the machine has 2 cores"),
        row("scenario wall time", total_seconds, "s",
            note=f"{engine}; start-up {setup_seconds:.0f} s; load average {load_before:.1f} at start, "
                 f"{os.getloadavg()[0]:.1f} at end (2 cores)"),
    ]


if __name__ == "__main__":
    if "--client" in sys.argv:
        client_entry(sys.argv[sys.argv.index("--client") + 1])
    elif "--shadow" in sys.argv:
        shadow_entry(sys.argv[sys.argv.index("--shadow") + 1])
    else:
        from bench.scenarios._standalone import main

        main(run, budget=200)
