"""The client of scenarios 2 and 4: POST payments, and wait until each one's final state is seen.

``drive`` (ours, and the Celery push peer): every user has one websocket
open on ``/ws/status/`` (token in the ``Authorization`` header, as non-browser
clients connect).  ``window`` posters each POST an order over a keep-alive
HTTP/1.1 connection and wait for that order's final ``job`` frame (a payment
job ``ok`` or ``failed``) before posting the next, so at most ``window`` jobs
are in flight: the system is kept saturated without ever filling the channel
and the latency is that of a saturated system, not of an ever-growing
backlog.  Latency is from the start of the POST to the final frame.  Every
frame but the snapshot is counted, whatever its kind or status: nothing here
assumes how many a job sends.  With ``receipts`` the sockets stay open after
the last payment until every paid order's receipt job is final too, so its
frames are counted.

``drive_polling`` (the Celery polling peer): the same posters, but each then
polls the progress endpoint on its keep-alive connection as celery-progress's
page does: at once, then 500 ms after each answer that is not complete.
Latency is from the start of the POST to the answer that says complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import websockets

from bench.harness import percentile

logger = logging.getLogger("bench.load")

FINAL = ("ok", "failed")
# The product's job kinds (orders.kinds.PAYMENT and the receipt task, orders.tasks.send_receipt).
PAYMENT = "payment"
RECEIPT = "orders.tasks.send_receipt"


@dataclass
class LoadResult:
    posted: int = 0
    done: int = 0
    failed: int = 0  # final, but not ok
    refused: int = 0  # POST not answered 202
    lost: int = 0  # no final frame within the job timeout
    cut: int = 0  # in flight or never posted when the run's time limit came
    seconds: float = float("nan")
    latencies_ms: list[float] = field(default_factory=list)
    paid: int = 0  # final and ok
    frames: int = 0  # websocket frames received, snapshots left out
    frames_by: Counter = field(default_factory=Counter)  # "payment running", "receipt ok", "order" ...
    receipts: int = 0  # paid orders whose receipt job was seen final (``receipts=True``)
    receipt_wait_s: float = 0.0  # from the last payment's final frame to the last receipt's
    polls: int = 0  # progress requests (``drive_polling``)
    cpu_spent: dict = field(default_factory=dict)  # CPU seconds by process name, filled in by the scenario
    product_ms: float = float("nan")  # CPU per job of the system's own processes (harness.product_ms)
    emails: int = 0  # receipts the mail server stand-in received during the run
    alone: "LoadResult | None" = None  # ours: the payment job alone, the receipt worker stopped
    error: str = ""  # the configuration could not be measured: why
    cpu: str = ""  # where the CPU went, filled in by the scenario
    cpu_ms: float = float("nan")  # CPU of every process of the system per job
    machine_busy: float = float("nan")  # share of all cores busy during the run, whoever used them
    profile: str = ""  # py-spy summaries, with BENCH_PROFILE=1

    @property
    def throughput(self) -> float:
        return self.done / self.seconds if self.seconds and self.done else float("nan")

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> str:
        return (f"{self.done}/{self.posted} final in {self.seconds:.1f}s = {self.throughput:.1f} jobs/s; "
                f"p50 {self.pct(50):.0f} ms, p90 {self.pct(90):.0f} ms, p99 {self.pct(99):.0f} ms; "
                f"failed {self.failed}, refused {self.refused}, lost {self.lost}, cut {self.cut}")


class HttpConnection:
    """A minimal keep-alive HTTP/1.1 JSON client: cheap enough not to be the bottleneck."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict, token: str) -> tuple[int, dict]:
        return await self.request("POST", path, body, token)

    async def get_json(self, path: str, token: str) -> tuple[int, dict]:
        return await self.request("GET", path, None, token)

    async def request(self, method: str, path: str, body: dict | None, token: str) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode() if body is not None else b""
        content = f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n" if body is not None else ""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Token {token}\r\nAccept: application/json\r\n{content}\r\n")
        self.writer.write(head.encode() + data)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            raw = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while size := int((await self.reader.readline()).strip() or b"0", 16):
                raw += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            raw = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, (json.loads(raw) if raw else {})

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


def _amount(i: int) -> dict:
    return {"amount": f"{10 + i % 90}.{i % 100:02d}", "nonce": "fake-valid-nonce"}


async def _post(http: HttpConnection, path: str, i: int, token: str, result: LoadResult) -> dict | None:
    """POST order ``i``; its answer when accepted (202), else None with the refusal counted."""
    try:
        status, body = await http.post_json(path, _amount(i), token)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        logger.warning("POST failed", exc_info=True)
        await http.close()
        result.refused += 1
        return None
    result.posted += 1
    if status != 202:
        result.refused += 1
        logger.warning("POST answered %s: %.300s", status, body)
        return None
    return body


async def _run_posters(poster, window: int, count: int, timeout: float, result: LoadResult) -> None:
    posters = [asyncio.create_task(poster(k)) for k in range(window)]
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*posters)
    except TimeoutError:
        logger.warning("the load run hit its %.0fs time limit after %d jobs", timeout, result.done)
        for task in posters:
            task.cancel()
        await asyncio.gather(*posters, return_exceptions=True)
        result.cut = count - result.done - result.refused - result.lost


async def drive(*, host: str, port: int, post_path: str, tokens: list[str], count: int, window: int,
                timeout: float, job_timeout: float = 60.0, receipts: bool = False,
                receipt_timeout: float = 30.0) -> LoadResult:
    """Run ``count`` payments through the system; see the module docstring."""
    loop = asyncio.get_running_loop()
    finals: dict[int, asyncio.Future] = {}
    receipt_finals: dict[int, float] = {}
    receipt_seen = asyncio.Event()
    result = LoadResult()
    starts: list[float] = []
    ends: list[float] = []

    def final_of(order_id: int) -> asyncio.Future:
        return finals.setdefault(order_id, loop.create_future())

    async def listen(ws) -> None:
        async for frame in ws:
            now = time.perf_counter()
            event = json.loads(frame)
            if event.get("type") in ("snapshot", "pong"):
                continue
            result.frames += 1
            job = event.get("job") if event.get("type") == "job" else None
            if not job:
                result.frames_by[str(event.get("type"))] += 1
                continue
            result.frames_by[f"{job.get('kind')} {job.get('status')}"] += 1
            if job.get("status") not in FINAL:
                continue
            subject = (job.get("subject") or {}).get("id")
            if job.get("kind") == PAYMENT:
                future = final_of(int(subject))
                if not future.done():
                    future.set_result((now, job["status"]))
            elif job.get("kind") == RECEIPT and subject is not None:
                receipt_finals.setdefault(int(subject), now)
                receipt_seen.set()

    counter = iter(range(count))
    paid: set[int] = set()

    async def poster(slot: int) -> None:
        http = HttpConnection(host, port)
        try:
            for i in counter:
                token = tokens[i % len(tokens)]
                started = time.perf_counter()
                body = await _post(http, post_path, i, token, result)
                if body is None:
                    continue
                order_id = int(body["id"])
                try:
                    finished, outcome = await asyncio.wait_for(asyncio.shield(final_of(order_id)), job_timeout)
                except TimeoutError:
                    result.lost += 1
                    continue
                starts.append(started)
                ends.append(finished)
                result.done += 1
                result.failed += outcome != "ok"
                if outcome == "ok":
                    paid.add(order_id)
                result.latencies_ms.append((finished - started) * 1000)
        finally:
            await http.close()

    sockets = []
    listeners = []
    try:
        for token in tokens:
            ws = await websockets.connect(f"ws://{host}:{port}/ws/status/", max_size=2**22, ping_interval=None,
                                          additional_headers={"Authorization": f"Token {token}"})
            sockets.append(ws)
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert snapshot.get("type") == "snapshot", snapshot
            listeners.append(asyncio.create_task(listen(ws)))
        await _run_posters(poster, window, count, timeout, result)
        if receipts and paid:
            # The receipts of the last orders are still on their way: the
            # frames and the CPU of a paid order include its receipt's.
            deadline = time.perf_counter() + receipt_timeout
            while not paid <= receipt_finals.keys() and time.perf_counter() < deadline:
                receipt_seen.clear()
                try:
                    await asyncio.wait_for(receipt_seen.wait(), max(0.01, deadline - time.perf_counter()))
                except TimeoutError:
                    break
            await asyncio.sleep(0.2)  # a frame sent with the last one
            result.receipts = len(paid & receipt_finals.keys())
            last = max((receipt_finals[o] for o in paid if o in receipt_finals), default=0.0)
            result.receipt_wait_s = max(0.0, last - max(ends, default=last))
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for ws in sockets:
            await ws.close()
    result.paid = len(paid)
    if starts:
        result.seconds = max(ends) - min(starts)
    return result


async def drive_polling(*, host: str, port: int, post_path: str, progress_path: str, tokens: list[str],
                        count: int, window: int, timeout: float, interval: float = 0.5,
                        job_timeout: float = 60.0) -> LoadResult:
    """Run ``count`` payments through a system whose page polls a celery-progress endpoint.

    ``progress_path`` is the endpoint's prefix; the task id and a slash follow.
    """
    result = LoadResult()
    starts: list[float] = []
    ends: list[float] = []
    counter = iter(range(count))

    async def poster(slot: int) -> None:
        http = HttpConnection(host, port)
        try:
            for i in counter:
                token = tokens[i % len(tokens)]
                started = time.perf_counter()
                body = await _post(http, post_path, i, token, result)
                if body is None:
                    continue
                url = f"{progress_path}{body['task_id']}/"
                info: dict = {}
                while time.perf_counter() - started < job_timeout:
                    try:
                        status, info = await http.get_json(url, token)
                    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                        logger.warning("poll failed", exc_info=True)
                        await http.close()
                        status, info = 0, {}
                    result.polls += 1
                    if status == 200 and info.get("complete"):
                        break
                    await asyncio.sleep(interval)  # celery-progress waits this long after each answer
                else:
                    result.lost += 1
                    continue
                finished = time.perf_counter()
                outcome = info.get("result") if isinstance(info.get("result"), dict) else {}
                ok = bool(info.get("success")) and outcome.get("status") == "paid"
                starts.append(started)
                ends.append(finished)
                result.done += 1
                result.failed += not ok
                result.paid += ok
                result.latencies_ms.append((finished - started) * 1000)
        finally:
            await http.close()

    await _run_posters(poster, window, count, timeout, result)
    if starts:
        result.seconds = max(ends) - min(starts)
    return result
